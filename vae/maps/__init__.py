"""2-D maps of latent codes: the projections, the service that computes and caches them, and the
worker processes it runs them in.

    vae.maps.projection   native, PCA, t-SNE, UMAP with the scikit-learn contract; compute_map
    vae.maps.service      MapStore (finished maps on disk), MapService (background jobs on futures)
    vae.maps.worker       the child process that computes t-SNE and UMAP for the service
    vae.maps.points       a map's points for the browser canvas, CSV export, picked indices

The rule of this subpackage: numpy and the projection libraries only, never torch or Streamlit,
because the worker processes import it and stay light.
"""
