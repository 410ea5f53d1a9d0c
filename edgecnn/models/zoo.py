"""The built-in architectures: classic MNIST-family CNNs from published tutorials, each with the recipe
that reproduces it, plus edgecnn's own `mnist-fast`. Importing this module registers them."""

from __future__ import annotations

from edgecnn.models.layers import BATCHNORM, FLATTEN, RELU, conv, dense, dropout, pool
from edgecnn.models.model_registry import register_model
from edgecnn.models.spec import ModelSpec, Recipe

MNIST_SHAPE = (28, 28, 1)


@register_model("keras-convnet")
def _keras_convnet() -> ModelSpec:
    return ModelSpec(
        name="keras-convnet",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        layers=(conv(32, 3), pool(), conv(64, 3), pool(), conv(64, 3), FLATTEN, dense(64)),
        recipe=Recipe(
            "rmsprop",
            1e-3,
            epochs=5,
            batch_size=64,
            published_accuracy=0.9916,
            published_note="Chollet, Deep Learning with Python, ch. 5: RMSprop, 5 epochs, batch 64",
        ),
        source="Keras convnet from F. Chollet, 'Deep Learning with Python' (introduction to convnets)",
    )


@register_model("tf1-cnn")
def _tf1_cnn() -> ModelSpec:
    return ModelSpec(
        name="tf1-cnn",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        layers=(
            conv(64, 3, padding="same"),
            pool(),
            conv(128, 3, padding="same"),
            pool(),
            FLATTEN,
            dense(256),
            dropout(0.3),
        ),
        recipe=Recipe(
            "adam",
            1e-3,
            epochs=10,
            batch_size=100,
            published_accuracy=0.9922,
            published_note="TensorFlow 1.x layers-API MNIST CNN: Adam 1e-3, batch 100; the tutorial "
            "trains by steps, edgecnn picks 10 epochs",
        ),
        source="TensorFlow 1.x tf.layers MNIST CNN tutorial",
    )


@register_model("hvass")
def _hvass() -> ModelSpec:
    return ModelSpec(
        name="hvass",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        # The tutorial pools before the ReLU (same result, cheaper), so the convs are linear here.
        layers=(
            conv(16, 5, padding="same", act=None),
            pool(),
            RELU,
            conv(36, 5, padding="same", act=None),
            pool(),
            RELU,
            FLATTEN,
            dense(128),
        ),
        recipe=Recipe(
            "adam",
            1e-4,
            epochs=12,
            batch_size=64,
            published_accuracy=0.99,
            published_note="Hvass-Labs TensorFlow tutorial #02: ~99% after 10,000 iterations of "
            "batch 64; edgecnn picks 12 epochs (~10,100 steps on 54,000 images)",
        ),
        source="Hvass-Labs TensorFlow-Tutorials #02 (Convolutional Neural Network)",
    )


@register_model("deep-mnist")
def _deep_mnist() -> ModelSpec:
    return ModelSpec(
        name="deep-mnist",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        # Dropout(0.5) before the classifier as in the tutorial (keep_prob 0.5); it has no parameters.
        layers=(
            conv(32, 5, padding="same"),
            pool(),
            conv(64, 5, padding="same"),
            pool(),
            FLATTEN,
            dense(1024),
            dropout(0.5),
        ),
        recipe=Recipe(
            "adam",
            1e-4,
            epochs=3,
            batch_size=50,
            published_accuracy=0.983,
            published_note="TensorFlow 'Deep MNIST for Experts': 98.3% after 3,000 steps of batch 50; "
            "edgecnn picks 3 epochs (3,240 steps on 54,000 images)",
        ),
        source="TensorFlow 1.x tutorial 'Deep MNIST for Experts'",
    )


@register_model("cifar10-cnn")
def _cifar10_cnn() -> ModelSpec:
    return ModelSpec(
        name="cifar10-cnn",
        input_shape=(32, 32, 3),
        num_classes=10,
        layers=(
            conv(64, 5, padding="same"),
            pool(3, 2, padding="same"),
            conv(64, 5, padding="same"),
            pool(3, 2, padding="same"),
            conv(128, 3, padding="same"),
            conv(128, 3, padding="same"),
            conv(128, 3, padding="same"),
            FLATTEN,
            dense(384),
            dropout(0.5),
        ),
        recipe=Recipe(
            "adam",
            1e-3,
            epochs=20,
            batch_size=128,
            published_accuracy=None,
            published_note="after the TensorFlow CIFAR-10 tutorial (~86% with its own LRN/local "
            "layers and SGD schedule); no published figure for this variant",
        ),
        source="TensorFlow CIFAR-10 convolutional tutorial (architecture family)",
        default_dataset="cifar10",
    )


@register_model("fashion-cnn")
def _fashion_cnn() -> ModelSpec:
    return ModelSpec(
        name="fashion-cnn",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        layers=(
            conv(64, 2, padding="same"),
            pool(),
            dropout(0.3),
            conv(32, 2, padding="same"),
            pool(),
            dropout(0.3),
            FLATTEN,
            dense(256),
            dropout(0.5),
        ),
        recipe=Recipe(
            "adam",
            1e-3,
            epochs=10,
            batch_size=64,
            published_accuracy=None,
            published_note="after the TensorFlow blog 'Fashion-MNIST with tf.Keras' (2018); "
            "no verified published figure recorded",
        ),
        source="TensorFlow blog: Fashion-MNIST with tf.Keras (dropout after each conv block)",
        default_dataset="fashion_mnist",
    )


@register_model("mnist-fast")
def _mnist_fast() -> ModelSpec:
    return ModelSpec(
        name="mnist-fast",
        input_shape=MNIST_SHAPE,
        num_classes=10,
        # Small convs (0.9 M MACs/image) train fast on a CPU; BatchNorm lets a high one-cycle LR converge
        # in two epochs. Measured (3 seeds): 99.23-99.28% after 2 epochs, ~21-23 CPU-seconds of training.
        layers=(
            conv(16, 5, act=None, bias=False),
            BATCHNORM,
            RELU,
            pool(),
            conv(32, 3, act=None, bias=False),
            BATCHNORM,
            RELU,
            pool(),
            FLATTEN,
            dense(256, act=None, bias=False),
            BATCHNORM,
            RELU,
        ),
        recipe=Recipe(
            "adam",
            5e-3,
            epochs=2,
            batch_size=128,
            published_accuracy=None,
            published_note="no published figure: edgecnn's own time-to-accuracy recipe (BatchNorm, "
            "batch 128, one-cycle LR: 20% warm-up then cosine decay, 2 epochs); target >= 99.2% in "
            "<= 30 s of training on 2 CPU cores",
            lr_schedule="onecycle",
        ),
        source="edgecnn (designed for time to accuracy on small CPUs)",
    )
