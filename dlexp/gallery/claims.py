"""The twelve claims of the course notes (/work/shared/course-notes.md), each with its experiment, and a
thirteenth that follows from claim 10: how optimizer rankings depend on the learning rates."""

from __future__ import annotations

from dlexp.gallery import chain_rule, cures, descent, dropout, losses, regularization, tuning, vanishing
from dlexp.gallery.core import Claim
from dlexp.gallery.datasets import SPARSE_ACTIVE, SPARSE_FEATURES

CLAIMS: tuple[Claim, ...] = (
    Claim(
        1, "vanishing-depth", "The gradient vanishes with depth, faster for sigmoid than tanh",
        "σ′(x) = σ(x)(1 − σ(x)) ∈ (0, 0.25) and tanh′(x) = 1 − tanh²(x) ∈ (0, 1): multiplying many small "
        "derivatives drives the gradient towards 0, so in deep networks the early layers barely learn.",
        ("vanishing_depth.yaml",),
        ("dlexp train configs/gallery/vanishing_depth.yaml --set model.depth=16 --json | jq .grad_ratio",
         ("dlexp train configs/gallery/vanishing_depth.yaml --set model.activation=tanh --set "
         "model.depth=16 --json | jq .grad_ratio")),
        vanishing.measure_depth,
        "Networks of width 32 and depth 2 to 16 on the moons dataset, with sigmoid or tanh (Xavier init) "
        "or ReLU (He init), are trained for one epoch. The number measured is `grad_ratio` from "
        "`summary.json`: the mean gradient norm of the first layer's weights divided by the last layer's, "
        "over the first epoch. If every layer passed the gradient on untouched it would be about 1; the "
        "notes predict it shrinks like 0.25^depth for sigmoid.",
    ),
    Claim(
        2, "symptom", "Symptom: accuracy stops improving in a deep sigmoid network",
        "Symptoms of the vanishing gradient: accuracy stops improving after a few epochs; the model seems "
        "\"stuck\" at some accuracy.",
        ("deep_sigmoid.yaml",),
        ("dlexp train configs/gallery/deep_sigmoid.yaml --set training.epochs=100",
         "dlexp train configs/gallery/deep_sigmoid.yaml --set training.epochs=100 --set model.depth=3"),
        vanishing.measure_symptom,
        "Sigmoid networks of width 32 and depth 2, 3, 5 and 10 are trained with plain SGD (lr 0.1) on "
        "moons for 100 epochs; validation accuracy is recorded after every epoch.",
    ),
    Claim(
        3, "relu", "ReLU and Leaky ReLU (with He init) fix it",
        "Use ReLU / Leaky ReLU instead of sigmoid / tanh.",
        ("deep_sigmoid.yaml",),
        (("dlexp train configs/gallery/deep_sigmoid.yaml --set model.activation=relu --set "
         "model.init=he_normal"),
         ("dlexp train configs/gallery/deep_sigmoid.yaml --set model.activation=leaky_relu --set "
         "model.init=he_normal")),
        cures.measure_relu,
        "The 10-layer network of claim 2, trained for 30 epochs, with its sigmoids replaced by ReLU or "
        "Leaky ReLU (He initialisation) — and, as a control, by tanh (Xavier initialisation).",
    ),
    Claim(
        4, "batchnorm", "BatchNorm fixes it, even for sigmoid",
        "Apply Batch Normalization: it keeps activations stable.",
        ("deep_sigmoid.yaml",),
        ("dlexp train configs/gallery/deep_sigmoid.yaml --set model.batchnorm=true",),
        cures.measure_batchnorm,
        "The 10-layer sigmoid network of claim 2, 30 epochs of SGD, with and without BatchNorm between "
        "each Dense layer and its sigmoid. Per-layer gradient norms come from `grad_norms.csv` at step 1.",
    ),
    Claim(
        5, "optimizers-help", "Adam and RMSProp help",
        "Use better optimizers (Adam, RMSProp).",
        ("deep_sigmoid.yaml",),
        ("dlexp train configs/gallery/deep_sigmoid.yaml --set 'training.optimizer={name: adam, lr: 0.001}'",
         ("dlexp train configs/gallery/deep_sigmoid.yaml --set 'training.optimizer={name: rmsprop, lr: "
         "0.001}'")),
        cures.measure_optimizers,
        "The 10-layer sigmoid network of claim 2, 30 epochs, trained with SGD (lr 0.1), Adam (lr 0.001, "
        "torch's default) and RMSProp (lr 0.001, and torch's default 0.01); a ReLU + He network with SGD "
        "is the yardstick.",
    ),
    Claim(
        6, "chain-rule", "Backpropagation is the chain rule",
        "Backpropagation is based on the chain rule: dL/dw = dL/dz · dz/dh · dh/dw; each layer's gradient "
        "is a product of partial derivatives.",
        ("*",),
        ("dlexp gallery --only 6",
         "dlexp gradcheck configs/sigmoid_depth10.yaml --max-per-param 12   # one config, in detail"),
        chain_rule.measure_chain_rule,
        "If backpropagation is the chain rule done right, its gradient must equal the slope measured by "
        "nudging each weight: (L(θ + h) − L(θ − h)) / 2h. The gallery builds the model of every config in "
        "`configs/` and `configs/gallery/` in float64 and compares the two with "
        "`dlexp.nn.gradcheck.check_model`.",
    ),
    Claim(
        7, "dropout", "Dropout reduces overfitting",
        "Dropout is a regularization technique: random neurons are dropped during training, so the network "
        "cannot depend on specific neurons. Dropout improves generalization and reduces overfitting.",
        ("dropout.yaml",),
        ("dlexp train configs/gallery/dropout.yaml --set model.dropout=0 --seed 0",
         "dlexp train configs/gallery/dropout.yaml --set model.dropout=0.5 --seed 0"),
        dropout.measure_overfitting,
        "A 256-256 ReLU network, far larger than 100 noisy moons need, is trained for 200 epochs with "
        "Adam, with dropout 0 and 0.5. Overfitting is the gap between training and validation loss (and "
        "accuracy); each seed gives the same data and initial weights to both runs, so differences are "
        "paired.",
    ),
    Claim(
        8, "dropout-inference", "At inference dropout is off and activations are scaled",
        "At inference (testing) no dropout is applied; weights are scaled to match training conditions.",
        ("dropout_modes.yaml",),
        ("dlexp train configs/gallery/dropout_modes.yaml --set model.dropout_mode=inverted",
         "dlexp train configs/gallery/dropout_modes.yaml --set model.dropout_mode=scale_at_inference"),
        dropout.measure_inference,
        "dlexp implements both conventions: `inverted` (scale by 1/(1 − p) while training, nothing at "
        "inference; what PyTorch and Keras do) and `scale_at_inference` (nothing while training, × (1 − p) "
        "at inference; the original paper). The same network is trained in both modes from the same seed, "
        "and the inference output is compared with the average of many training-mode (random-mask) outputs.",
    ),
    Claim(
        9, "batch-size", "Stochastic, mini-batch and batch gradient descent",
        "SGD updates after each sample: faster but noisy. Batch GD uses the entire dataset per update: very "
        "accurate but slow. Mini-batch GD is the default choice in practice.",
        ("batch_size.yaml",),
        ("dlexp train configs/gallery/batch_size.yaml --set training.batch_size=1 --set training.epochs=10",
         "dlexp train configs/gallery/batch_size.yaml --set training.batch_size=32",
         ("dlexp train configs/gallery/batch_size.yaml --set training.batch_size=full --set "
         "training.epochs=1500")),
        descent.measure_batch_size,
        "A 32-32 tanh network on 800 moons, plain SGD with lr 0.1, batch sizes 1, 32 and full (800). Wall "
        "time comes from each run's `timing.csv`; noise is the share of epochs after which the training "
        "loss (over the whole training set) went up.",
    ),
    Claim(
        10, "adaptive-optimizers", "Adam, Adamax, Adadelta and RMSProp against SGD",
        "Adam combines momentum and an adaptive learning rate; Adamax is a variant of Adam that works "
        "better with sparse gradients; Adadelta adjusts the learning rate dynamically; RMSProp keeps a "
        "moving average of squared gradients. Advanced optimizers improve convergence speed.",
        ("optimizers.yaml", "adamax_sparse.yaml"),
        ("dlexp train configs/gallery/optimizers.yaml --set 'training.optimizer={name: adam, lr: 0.003}'",
         ("dlexp train configs/gallery/adamax_sparse.yaml --set 'training.optimizer={name: adamax, lr: "
         "0.02}'")),
        descent.measure_adaptive,
        "Two problems: three interleaved spirals (a 64-64-64 ReLU network) and a sparse binary dataset the "
        f"gallery writes ({SPARSE_FEATURES} features, {SPARSE_ACTIVE} set per row, most of them rare, so "
        "most first-layer gradients are zero at any step). Each optimizer gets a small grid of learning "
        "rates and is judged at its best one.",
    ),
    Claim(
        11, "l1-l2", "L1/L2 regularization reduces overfitting; L1 makes weights sparse",
        "Dropout and L1/L2 regularization help reduce overfitting.",
        ("regularization.yaml",),
        ("dlexp train configs/gallery/regularization.yaml --set training.l2=0.01",
         "dlexp train configs/gallery/regularization.yaml --set training.l1=0.001"),
        regularization.measure_penalties,
        "A 128-128 ReLU network on a quarter of the breast cancer data (142 tumours; 427 held out) overfits "
        "easily. It is trained with no penalty, L2 (0.001, 0.01) and L1 (0.0001, 0.001) on the weights; the "
        "trained weights are read back from `checkpoints/final.npz`.",
    ),
    Claim(
        12, "losses", "Regression losses vs classification losses",
        "Regression: MAE = mean |y − ŷ|, MSE = mean (y − ŷ)². Classification: binary cross-entropy for 0/1 "
        "labels, categorical cross-entropy for one-hot labels, sparse categorical cross-entropy for integer "
        "labels. Different losses are used for regression and classification.",
        ("losses_diabetes.yaml", "losses_iris.yaml", "losses_breast_cancer.yaml"),
        ("dlexp train configs/gallery/losses_diabetes.yaml --set training.loss=mae",
         "dlexp train configs/gallery/losses_iris.yaml --set training.loss=sparse_cce",
         "dlexp train configs/gallery/losses_breast_cancer.yaml --set training.loss=cce"),
        losses.measure_losses,
        "Regression on the diabetes data with MSE and MAE, once on clean targets and once with 10 % of the "
        "targets pushed 8 standard deviations up; errors are measured on the clean validation targets. "
        "Classification: cce against sparse_cce on iris, bce against cce on breast cancer.",
    ),
    Claim(
        13, "tuned-rankings", "Optimizer rankings at default learning rates are rankings of the defaults",
        "Not in the notes, but what claim 10's question needs: \"which optimizer is best?\" is usually answered "
        "by training each at its default learning rate. Empirical studies (Choi et al. 2019, \"On Empirical "
        "Comparisons of Optimizers for Deep Learning\"; Schmidt, Schneider & Hennig 2021, \"Descending through "
        "a Crowded Valley\") found that such rankings change once every optimizer's learning rate is tuned with "
        "the same budget.",
        ("tuned_optimizers.yaml",),
        (("dlexp compare-optimizers configs/gallery/tuned_optimizers.yaml --optimizers "
         "sgd,momentum,adam,rmsprop,adadelta --seeds 5 --set seed=3"),
         ("dlexp compare-optimizers configs/gallery/tuned_optimizers.yaml --optimizers "
         "sgd,momentum,adam,rmsprop,adadelta --tune-lr --seeds 5")),
        tuning.measure_tuned_ranking,
        "SGD, SGD with momentum 0.9, Adam, RMSProp and Adadelta train a 32-32 ReLU network on the shipped "
        "breast cancer data (a quarter held out for validation, a quarter for testing), first each at torch's "
        "default learning rate, then each at the lr `dlexp compare-optimizers --tune-lr` chooses from a "
        "log-spaced grid centred on that default (on the validation loss of separate tuning seeds). Both "
        "comparisons use the same evaluation seeds and are ranked by the test loss.",
    ),
)

BY_ID = {claim.id: claim for claim in CLAIMS}
