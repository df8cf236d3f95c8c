"""Distillation: a teacher (a bigger model over the same classes) scores the training images, and the student
learns from its scores, softened by a temperature, beside the labels; and from images of no class
(edge.folders.UNLABELLED), which only the teacher labels (Hinton, Vinyals and Dean 2015).

The teacher runs once an image, on the image as read (not augmented) at its own input size: its scores stand
for every augmented view the student is shown. A teacher is a bundle (its .tflite, through the interpreter the
device runs) or a Keras model; either gives probabilities, which softened are p^(1/T) renormalised (their
logarithms are logits up to a constant)."""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.bundle import MANIFEST, read_bundle
from edge.converter.datasets import Split, load_images
from edge.errors import EdgeError, ModelError
from edge.eval.baseline import against_guessing
from edge.eval.paired import ALPHA, judge
from edge.progress import Log

DISTILL_TEMPERATURE = 2.0
DISTILL_WEIGHT = 0.5
# An int8 teacher's probabilities come in steps of 1/256: below that a score says nothing, and its logarithm
# (-inf at 0) would make the softened target all of one class.
FLOOR = 1e-4
NO_LABEL = -1  # an unlabelled image's label in the packed targets
CHUNK = 64  # images read at the teacher's size at a time


@dataclass(frozen=True)
class Teacher:
    path: str
    kind: str  # "bundle" or "keras"
    size: tuple[int, int]  # the input's height and width
    columns: np.ndarray  # the student's class c is the teacher's output column columns[c]
    score: Callable[[np.ndarray], np.ndarray]  # uint8 RGB images at `size` -> probabilities, its own columns
    facts: dict  # what edge.json says of it
    trained_on: frozenset[Path] = frozenset()  # the images it trained on, where its bundle says and they are here


@dataclass(frozen=True)
class Teaching:
    """What the student learns from: the teacher's softened scores on its images, and the unlabelled images."""

    temperature: float
    weight: float  # the teacher's share of the loss
    train_soft: np.ndarray  # a row a training image, in the student's class order
    val_soft: np.ndarray
    unlabelled_x: np.ndarray  # at the student's input size
    unlabelled_soft: np.ndarray
    record: dict  # edge.json's training.distillation, without the gain

    def targets(self, labels: np.ndarray, soft: np.ndarray) -> np.ndarray:
        """One row an image: its label (NO_LABEL: none), then the teacher's softened scores."""
        return np.concatenate([labels.astype(np.float32)[:, None], soft], axis=1).astype(np.float32)

    def training(self, split: Split) -> tuple[np.ndarray, np.ndarray]:
        """The training images, the unlabelled after the labelled, and their packed targets."""
        labels = np.concatenate([split.train_y, np.full(len(self.unlabelled_x), NO_LABEL)])
        x = np.concatenate([split.train_x, self.unlabelled_x]) if len(self.unlabelled_x) else split.train_x
        return x, self.targets(labels, np.concatenate([self.train_soft, self.unlabelled_soft]))

    def loss(self):
        """(1 - weight) x cross-entropy with the label (where there is one) + weight x T^2 x KL(teacher || student)
        at temperature T; T^2 keeps the soft part's gradients the size of the hard part's as T changes."""
        from edge.converter.tfkeras import keras, tf

        t, weight = self.temperature, self.weight

        def distillation(y, p):
            label, soft = y[:, 0], y[:, 1:]
            labelled = tf.cast(label >= 0, p.dtype)
            hard = keras.losses.sparse_categorical_crossentropy(tf.maximum(label, 0.0), p)
            student = tf.nn.log_softmax(tf.math.log(tf.maximum(p, 1e-7)) / t)
            kl = tf.reduce_sum(soft * (tf.math.log(tf.maximum(soft, 1e-7)) - student), axis=-1)
            return (1 - weight) * labelled * hard + weight * t * t * kl

        return distillation

    def metric(self):
        """Accuracy over the images that have a label (the unlabelled count neither way)."""
        from edge.converter.tfkeras import keras, tf

        class LabelledAccuracy(keras.metrics.Mean):
            def update_state(self, y, p, sample_weight=None):
                label = tf.cast(y[:, 0], tf.int64)
                right = tf.cast(tf.equal(tf.argmax(p, axis=-1), label), p.dtype)
                return super().update_state(right, tf.cast(label >= 0, p.dtype))

        return LabelledAccuracy(name="accuracy")


def load_teacher(path, classes: list[str]) -> Teacher:
    """A bundle folder (its labels matched to `classes` by name) or a Keras model (its outputs taken to be
    `classes` in order, checked by count); refuses anything else."""
    path = Path(path)
    if (path / MANIFEST).is_file():
        return _bundle_teacher(path, classes)
    return _keras_teacher(path, classes)


def _bundle_teacher(path: Path, classes: list[str]) -> Teacher:
    from edge.eval.evaluate import classify_all
    from edge.interpreter import input_size, make_interpreter

    bundle = read_bundle(path)
    missing, extra = sorted(set(classes) - set(bundle.labels)), sorted(set(bundle.labels) - set(classes))
    if missing or extra:
        said = "; ".join(
            part
            for part in (
                f"it lacks {', '.join(missing)}" if missing else "",
                f"it has {', '.join(extra)}, which the training folders do not" if extra else "",
            )
            if part
        )
        raise EdgeError(
            f"--teacher {path} knows other classes than the training folders ({said}): a teacher must be trained on "
            "the same classes; train one on these folders first (edge convert --model xception ...)"
        )
    model = bundle.model_path.read_bytes()
    interpreter = make_interpreter(model)
    pixels = tuple(bundle.manifest["input"]["range"])  # what the file takes pixels 0..255 as (edge quantize: any)

    def score(images: np.ndarray) -> np.ndarray:
        rows = classify_all(interpreter, ((image, None) for image in images), pixels)
        return probabilities(np.stack([row for row, _ in rows]))

    facts = {
        "path": str(path),
        "kind": "bundle",
        "backbone": bundle.manifest["backbone"]["name"],
        "quantization": (bundle.manifest.get("quantization") or {}).get("mode"),
        "bytes": len(model),
        "sha256": hashlib.sha256(model).hexdigest(),
    }
    columns = np.array([bundle.labels.index(name) for name in classes])
    trained_on = _trained_on(bundle.manifest.get("training", {}).get("options", {}))
    return Teacher(str(path), "bundle", input_size(interpreter), columns, score, facts, trained_on)


def _trained_on(options: dict) -> frozenset[Path]:
    """The images a bundle's model trained on, as its recorded options split its folders again (empty where they
    are not on this machine, or not as they were)."""
    from edge.converter.datasets import stratified_split
    from edge.folders import scan

    data = options.get("data")
    try:
        folder = scan(data if isinstance(data, str) else list(data or []))
    except (EdgeError, TypeError, OSError):
        return frozenset()
    if options.get("val") is None:
        try:
            train, _ = stratified_split(folder.labels, float(options["val_split"]), int(options["seed"]))
        except (KeyError, TypeError, ValueError):
            return frozenset()
        paths = [folder.paths[i] for i in train]
    else:
        paths = folder.paths
    return frozenset(path.resolve() for path in paths)


def _keras_teacher(path: Path, classes: list[str]) -> Teacher:
    import edge.converter.layers  # noqa: F401 -- registers edge's Preprocess, which edge's own models hold
    from edge.converter.tfkeras import keras

    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as e:  # Keras raises many kinds for a file that is not one of its models
        raise ModelError(
            f"--teacher {path} is neither a bundle folder (no {MANIFEST}) nor a Keras model Keras can load "
            f"({type(e).__name__}): give one of them"
        ) from None
    shape, out = model.input_shape, model.output_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[3] != 3 or None in shape[1:3]:
        raise EdgeError(f"--teacher {path} takes {shape}: a teacher takes one RGB image of a fixed size")
    if isinstance(out, list) or len(out) != 2 or out[1] != len(classes):
        raise EdgeError(
            f"--teacher {path} gives {out}: a teacher gives one score a class, {len(classes)} here "
            f"({', '.join(classes)}, in this order)"
        )

    def score(images: np.ndarray) -> np.ndarray:
        return probabilities(model.predict(images.astype(np.float32), batch_size=32, verbose=0))

    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    facts = {
        "path": str(path),
        "kind": "keras",
        "parameters": int(model.count_params()),
        "bytes": sum(f.stat().st_size for f in files),
    }
    return Teacher(str(path), "keras", (int(shape[1]), int(shape[2])), np.arange(len(classes)), score, facts)


def probabilities(scores: np.ndarray) -> np.ndarray:
    """A model's scores as probabilities: as they are where they are some (an int8 softmax's sum is 1 to within
    its steps), else taken for logits and put through a softmax."""
    if scores.min() >= 0 and np.abs(scores.sum(axis=1) - 1).max() <= 0.05:
        return scores
    z = np.exp(scores - scores.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def softened(p: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities at temperature T: p^(1/T) renormalised, p floored at FLOOR first."""
    z = np.log(np.maximum(p, FLOOR)) / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def teach(teacher: Teacher, split: Split, temperature: float, weight: float, log: Log) -> Teaching:
    """Score every image with the teacher; refuse a teacher no better than guessing on the validation images."""
    size = split.train_x.shape[1:3]
    val = _scores(teacher, split.val_x, split.val_paths, log, "the teacher on the validation images")
    right = val.argmax(1) == split.val_y
    baseline = against_guessing(split.val_y, right, len(split.classes))
    if baseline["weak"]:
        raise EdgeError(
            f"--teacher {teacher.path} is no better than guessing on the {len(split.val_y)} validation images "
            f"({right.mean():.4f}, where always answering '{split.classes[baseline['majority_class']]}' gets "
            f"{baseline['majority_accuracy']:.4f}): it has nothing to teach; give a teacher trained on these classes"
        )
    seen = sum(path.resolve() in teacher.trained_on for path in split.val_paths)
    log(f"teacher {teacher.path}: accuracy {right.mean():.4f} on the validation images")
    train = _scores(teacher, split.train_x, split.train_paths, log, "the teacher on the training images")
    unlabelled_x, kept, skipped = load_images(split.unlabelled, int(size[0]), width=int(size[1]))
    for path, why in skipped:
        log(f"  skipped {path}: {why}")
    unlabelled = _scores(
        teacher, unlabelled_x, [split.unlabelled[i] for i in kept], log, "the teacher on the unlabelled images"
    )
    record = {
        "teacher": {
            **teacher.facts,
            "input_size": list(teacher.size),
            "accuracy": float(right.mean()),
            "trained_on_validation_images": seen,
        },
        "temperature": temperature,
        "weight": weight,
        "unlabelled_images": len(unlabelled_x),
        "unlabelled_skipped": len(skipped),
    }
    return Teaching(
        temperature,
        weight,
        softened(train, temperature),
        softened(val, temperature),
        unlabelled_x,
        softened(unlabelled, temperature),
        record,
    )


def _scores(teacher: Teacher, images: np.ndarray, paths: list, log: Log, what: str) -> np.ndarray:
    """The teacher's probabilities in the student's class order: on `images` where the sizes agree, else on the
    files read again at the teacher's size (an image scaled up twice would be blurred)."""
    if not len(paths):
        return np.zeros((0, len(teacher.columns)), np.float32)
    bar = log.bar(len(paths), what)
    rows = []
    same_size = tuple(images.shape[1:3]) == teacher.size
    for start in range(0, len(paths), CHUNK):
        if same_size:
            chunk = images[start : start + CHUNK]
        else:
            chunk, kept, skipped = load_images(paths[start : start + CHUNK], teacher.size[0], width=teacher.size[1])
            if skipped:  # they were read once already: the file changed meanwhile
                raise EdgeError(f"{skipped[0][0]} could not be read again ({skipped[0][1]}): leave the data as it is")
        rows.append(teacher.score(chunk)[:, teacher.columns])
        bar.update(len(chunk))
    bar.finish()
    return np.concatenate(rows).astype(np.float32)


def gain(truth: np.ndarray, taught: np.ndarray, alone: np.ndarray) -> dict:
    """The taught student's validation accuracy against the same student trained alone (same seed), and whether
    the images show a difference either way (McNemar's exact test, two-sided, edge.eval.paired)."""
    better = judge(truth, taught, alone, 0.0)  # a "drop" from taught to alone is the teacher's gain
    worse = judge(truth, alone, taught, 0.0)
    p_value = min(1.0, 2 * min(better.p_value, worse.p_value))  # two-sided: either way counts
    shown = p_value < ALPHA and better.drop != 0
    return {
        "alone": float(np.mean(alone == truth)),
        "taught": float(np.mean(taught == truth)),
        "gain": better.drop,
        "low": better.low,
        "high": better.high,
        "won": better.lost,  # images the taught student gets right and the student alone wrong
        "lost": better.gained,
        "shown": ("better" if better.drop > 0 else "worse") if shown else "no difference shown",
        "p_value": p_value,
    }
