"""Bring your own model: an ONNX encoder and decoder in, a Latent Lab model out as ONNX.

    python -m vae.onnx import ENCODER.onnx DECODER.onnx [--name NAME] [--kind ae|vae] [--dataset mnist]
    python -m vae.onnx export CHECKPOINT.safetensors --out FOLDER

From Python, the library stores a pair (vae.checkpoint.ModelLibrary.import_onnx) and loads it like any
checkpoint (vae.checkpoint.load_checkpoint on its folder). The pieces:

    store     the stored pair: folder, sidecar, OnnxConfig, PairSpec, OnnxError (standard library only)
    validate  the one reader of untrusted ONNX bytes and the encoder/decoder contract (onnx, onnxruntime)
    probe     validate's check, trial run included, in a child process with memory and CPU limits
    runtime   one graph run by onnxruntime on CPU (numpy, no torch)
    model     OnnxAutoEncoder: the pair behind AutoEncoder's interface (torch)
    export    a Latent Lab model as encoder.onnx and decoder.onnx (torch.onnx, onnxscript)
    exports   the app's export: `python -m vae.onnx export` in a child process, zips kept per model
    cli       the command line above

Nothing is imported here, so that listing the library (which reads `store`) pulls in neither onnx,
onnxruntime nor torch; the first page draws without them.
"""
