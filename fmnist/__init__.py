"""fmnist: a Fashion-MNIST studio (training, evaluation, Hub publishing and a Gradio app)."""

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
NUM_CLASSES = len(CLASS_NAMES)

__version__ = "0.1.0"
