"""The papers gallery: five classic findings, each with its paper, its experiment and its verdict rule."""

from __future__ import annotations

from dlexp.gallery import papers
from dlexp.gallery.core import Claim

SYNTHETIC = "synthetic data in place of the paper's images: "

PAPERS: tuple[Claim, ...] = (
    Claim(
        1, "glorot-bengio", "Glorot & Bengio: saturation, and a normalized initialisation",
        "With sigmoid units and the standard initialisation U(±1/√fan_in), the last hidden layer is driven into "
        "saturation near 0 early in training (figure 2); with the normalized initialisation "
        "U(±√6/√(fan_in + fan_out)), the spread of activations and of back-propagated gradients stays roughly "
        "constant from layer to layer, where the standard initialisation makes it shrink (figures 6 and 7, tanh "
        "networks).",
        ("paper_glorot.yaml",),
        ("dlexp train configs/gallery/paper_glorot.yaml",
         "dlexp train configs/gallery/paper_glorot.yaml --set model.init=xavier_uniform",
         ("dlexp train configs/gallery/paper_glorot.yaml --set model.activation=tanh --set model.depth=5 "
          "--set training.epochs=1 --set logging.histograms_every=1000")),
        papers.measure_glorot,
        "The paper trained networks of five hidden layers of 1000 units on Shapeset-3×2, MNIST and CIFAR-10. "
        "Here: " + SYNTHETIC + "10 Gaussian blobs in 20 dimensions (600 points, noise 0.5). (a) Four sigmoid "
        "layers of 100 units, SGD with lr 0.5 and batches of 10 for 10 epochs, standard (`torch_default`: "
        "U(±1/√fan_in), the paper's standard init) against normalized (`xavier_uniform`) initialisation; the "
        "mean activation per layer comes from `layer_stats.csv`. (b) Five tanh layers of 100 units at the "
        "first step: each layer's activation standard deviation (`layer_stats.csv`) and the median size of "
        "the back-propagated gradient ∂L/∂z (`histograms.csv`, `logging.histograms_every`).",
        paper=('Xavier Glorot and Yoshua Bengio (2010), "Understanding the difficulty of training deep '
               'feedforward neural networks", AISTATS.'),
    ),
    Claim(
        2, "he-init", "He et al. (2015): a deep ReLU network needs He initialisation",
        "A 30-layer ReLU network initialised with Xavier's variance stalls, while the same network with He's "
        "initialisation, variance 2/fan_in, trains (figure 3).",
        ("paper_he_init.yaml",),
        ("dlexp train configs/gallery/paper_he_init.yaml --set model.init=xavier_uniform",
         "dlexp train configs/gallery/paper_he_init.yaml"),
        papers.measure_he_init,
        "The paper's 30-layer network was a convolutional net on ImageNet. Here: " + SYNTHETIC + "moons "
        "(500 points, noise 0.15) through 30 ReLU layers of 32 units, SGD with lr 0.01 and momentum 0.9, "
        "batches of 32, 8 epochs, with `xavier_uniform` or `he_normal` weights (biases 0).",
        paper=('Kaiming He, Xiangyu Zhang, Shaoqing Ren and Jian Sun (2015), "Delving deep into rectifiers: '
               'surpassing human-level performance on ImageNet classification", ICCV.'),
    ),
    Claim(
        3, "ioffe-szegedy", "Ioffe & Szegedy (2015): Batch Normalization",
        "A network of three hidden layers of 100 sigmoid units trains faster and reaches a higher accuracy with "
        "Batch Normalization, and the inputs of its sigmoids keep a stable distribution over training (their "
        "15th, 50th and 85th percentiles; figure 1).",
        ("paper_batchnorm.yaml",),
        ("dlexp train configs/gallery/paper_batchnorm.yaml",
         "dlexp train configs/gallery/paper_batchnorm.yaml --set model.batchnorm=true"),
        papers.measure_batchnorm,
        "The paper trained this network on MNIST for 50,000 steps of 60 examples. Here: " + SYNTHETIC +
        "10 Gaussian blobs in 20 dimensions (1000 points, noise 0.5), the paper's three sigmoid layers of 100 "
        "units with N(0, 0.1²) weights, SGD with lr 0.5, batches of 32, 8 epochs, with and without BatchNorm. "
        "The percentiles of the last hidden layer's sigmoid inputs come from the `pre_activation` histograms "
        "every 10 steps.",
        paper=('Sergey Ioffe and Christian Szegedy (2015), "Batch Normalization: accelerating deep network '
               'training by reducing internal covariate shift", ICML.'),
    ),
    Claim(
        4, "klambauer", "Klambauer et al. (2017): self-normalizing networks",
        "With SELU activations and LeCun-normal initialisation, activations keep mean ≈ 0 and variance ≈ 1 "
        "through many layers (theorem 1), and deep plain feed-forward networks train without normalization "
        "layers (figure 1).",
        ("paper_selu.yaml",),
        ("dlexp train configs/gallery/paper_selu.yaml",
         "dlexp train configs/gallery/paper_selu.yaml --set model.activation=relu --set model.init=he_normal"),
        papers.measure_selu,
        "The paper compared 8- to 32-layer networks on MNIST, CIFAR-10 and 121 UCI tasks. Here: " + SYNTHETIC +
        "moons (500 points, noise 0.2, inputs standardised) through 16 hidden layers of 64 units, SGD with lr "
        "0.01 and momentum 0.9, 8 epochs: SELU with `lecun_normal` weights and no normalization, against ReLU "
        "with `he_normal` weights, with and without BatchNorm. Means and variances per layer come from "
        "`layer_stats.csv` at the first step.",
        paper=('Günter Klambauer, Thomas Unterthiner, Andreas Mayr and Sepp Hochreiter (2017), '
               '"Self-normalizing neural networks", NeurIPS.'),
    ),
    Claim(
        5, "resnet", "He et al. (2016): degradation, and residual connections",
        "A deeper plain network reaches a higher training loss than a shallower one (degradation, figure 1), "
        "and identity shortcuts h ← h + f(h) remove the gap (figure 4).",
        ("paper_resnet.yaml",),
        ("dlexp train configs/gallery/paper_resnet.yaml --set model.depth=5",
         "dlexp train configs/gallery/paper_resnet.yaml",
         "dlexp train configs/gallery/paper_resnet.yaml --set 'model.residual={every: 2}'"),
        papers.measure_resnet,
        "The paper compared plain and residual convolutional networks of 18 to 152 layers on ImageNet and "
        "CIFAR-10. Here: " + SYNTHETIC + "moons (600 points, noise 0.2) through tanh layers of 32 units with "
        "Xavier weights, SGD with lr 0.02 and momentum 0.9, 8 epochs: plain 5 layers, plain 21 layers, and 21 "
        "layers with an identity skip around each block of 2 layers after the first (`model.residual: "
        "{every: 2}`).",
        paper=('Kaiming He, Xiangyu Zhang, Shaoqing Ren and Jian Sun (2016), "Deep residual learning for image '
               'recognition", CVPR.'),
    ),
)

PAPER_BY_ID = {claim.id: claim for claim in PAPERS}
