"""fsanet_geo.model.files: the files that store, transfer and export the network
(safetensors checkpoints, class transfer for fine-tuning, BN folding, ONNX).

May import the network (fsanet_geo.model's modules); the network never imports it.
"""
