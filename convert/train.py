"""Transfer learning in two phases: a new head on the frozen backbone, then fine-tuning of its top
layers at a lower learning rate with BatchNorm kept in inference mode. With nothing to transfer
(`--weights none`) the whole network trains from the first epoch instead."""

import math
import time
from dataclasses import asdict, replace

import numpy as np

from edge.converter import prune as pruning
from edge.converter.augment import augmenter
from edge.converter.distribute import lr_scale
from edge.converter.finetune import FineTuning, choose_fine_tuning
from edge.converter.tfkeras import keras, tf

PATIENCE = 3  # epochs without a better validation loss before early stopping
# A phase on a pretrained backbone takes at least so many optimizer steps, and waits at least so many for a better
# validation loss: 5 epochs of 64 images in batches of 32 are 10 steps, and a head trained 10 steps from its random
# start is no better than guessing.
MIN_STEPS, PATIENCE_STEPS = 100, 20
SHORT_BN_MOMENTUM = 0.9  # 0.999 left BN statistics unconverged after ~190 steps: validation at chance


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float] | None:
    """Balanced weights (n / (k * count)) when class sizes differ by more than 20%, else None."""
    counts = np.bincount(labels, minlength=n_classes)
    if counts.max() <= 1.2 * counts.min():
        return None
    return {c: float(len(labels) / (n_classes * counts[c])) for c in range(n_classes)}


def train(clf, split, opts, log=None, teaching=None) -> tuple[object, dict]:
    """Train `clf` on `split` as `opts` say, from a teacher's scores too with `teaching`
    (edge.converter.distill); returns (the trained Keras model, a report)."""
    keras.utils.set_random_seed(opts.seed)
    weights = class_weights(split.train_y, len(split.classes))
    report: dict = {"class_weight": weights, "phases": []}
    fit = Fitter(split, opts, weights, log, teaching)
    if opts.weights == "none":
        shorten_batchnorm_memory(clf.model)
        epochs = opts.epochs + opts.fine_tune_epochs
        # Validation loss means little until BN statistics settle: no early stop in the first half.
        model, phase = fit.full("scratch", clf.model, epochs, opts.lr, opts.prune, patient_until=epochs // 2)
        report["phases"].append(phase)
        return model, report

    set_trainable(clf.backbone_layers, 0)
    if opts.epochs:
        if opts.augment:
            _, phase = fit.full("head", clf.model, opts.epochs, opts.lr, enough_steps=True)
        else:
            phase = fit.head_on_features(clf, opts.epochs, opts.lr)
        report["phases"].append(phase)
    model = clf.model
    if opts.fine_tune_epochs:
        probe = report["phases"][0]["val_accuracy"] if opts.epochs else None
        tuning = fine_tuning(opts, int(np.bincount(split.train_y).min()), probe, len(clf.backbone_layers))
        report["fine_tuning"] = asdict(tuning)
        if log:
            log(f"fine-tuning {tuning.layers} of {tuning.of} backbone layers at lr {tuning.lr:g}: {tuning.why}")
        if tuning.layers:
            unfrozen = set_trainable(clf.backbone_layers, tuning.layers, batchnorm=bool(opts.prune))
            if opts.prune:
                shorten_batchnorm_memory(clf.model)
            model, phase = fit.full(
                "fine-tune", clf.model, opts.fine_tune_epochs, tuning.lr, opts.prune, enough_steps=True
            )
            report["phases"].append({**phase, "unfrozen_layers": unfrozen})
    return model, report


def fine_tuning(opts, images_per_class: int, probe: float | None, n_layers: int) -> FineTuning:
    """What the fine-tuning phase unfreezes, at what learning rate: as given, or chosen from the data."""
    if opts.prune:
        # Pruned weights must be retrained to recover, so pruning unfreezes the whole backbone, and
        # BatchNorm too: frozen statistics describe the unpruned weights (accuracy fell to chance).
        return FineTuning(n_layers, n_layers, opts.tuning_lr, "pruning retrains every layer")
    if opts.fine_tune_layers == "auto":
        chosen = choose_fine_tuning(images_per_class, probe, n_layers, opts.lr)
        return replace(chosen, lr=opts.fine_tune_lr or chosen.lr)
    return FineTuning(min(opts.fine_tune_layers, n_layers), n_layers, opts.tuning_lr, "--fine-tune-layers as given")


def shorten_batchnorm_memory(model) -> None:
    """BatchNorm statistics that must follow fast-changing weights (training from scratch, pruning)
    need a shorter memory than the applications' 0.99-0.999."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = SHORT_BN_MOMENTUM


def set_trainable(layers: list, top: int, batchnorm: bool = False) -> int:
    """Freeze all but the top `top` layers. BatchNorm among them stays frozen (inference mode, what
    fine-tuning on small data wants) unless `batchnorm`. Returns how many layers train."""
    count = 0
    for i, layer in enumerate(layers):
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= len(layers) - top and (batchnorm or not is_bn)
        count += layer.trainable
    return count


class Fitter:
    """Compiles and fits one phase; holds what every phase shares (data, targets, loss, options, progress)."""

    def __init__(self, split, opts, class_weight, log, teaching=None):
        self.opts, self.class_weight, self.log, self.teaching = opts, class_weight, log, teaching
        if teaching:  # targets: the label, then the teacher's scores; unlabelled images after the labelled
            self.train_xy = teaching.training(split)
            self.val_xy = (split.val_x, teaching.targets(split.val_y, teaching.val_soft))
        else:
            self.train_xy, self.val_xy = (split.train_x, split.train_y), (split.val_x, split.val_y)
        # --batch-size is each device's: a step of the strategy in scope takes it on every one of them
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        self.batch, self.lr_scale = opts.batch_size * replicas, lr_scale(replicas)
        self.steps = math.ceil(len(self.train_xy[0]) / self.batch)  # per epoch, images or cached features

    def _weights(self, y: np.ndarray) -> np.ndarray:
        """Each image's weight in the loss: its class's (an unlabelled image's 1)."""
        labels = (y[:, 0] if y.ndim == 2 else y).astype(np.int64)
        table = self.class_weight or {}
        return np.array([table.get(int(label), 1.0) for label in labels], np.float32)

    def _dataset(self, x, y, training: bool):
        if training:  # class weights as sample weights: Keras' class_weight reads a row of targets as one-hot
            ds = tf.data.Dataset.from_tensor_slices((x, y, self._weights(y)))
            ds = ds.shuffle(len(x), seed=self.opts.seed, reshuffle_each_iteration=True)
        else:
            ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.batch(self.batch).map(lambda a, *rest: (tf.cast(a, tf.float32), *rest))
        if training and self.opts.augment and x.ndim == 4:
            augment = augmenter(self.opts.seed, self.opts.flip)
            ds = ds.map(lambda a, *rest: (augment(a, training=True), *rest), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    def _fit(
        self,
        name,
        model,
        train_xy: tuple[np.ndarray, np.ndarray],
        val_xy: tuple[np.ndarray, np.ndarray],
        epochs,
        lr,
        extra_callbacks=(),
        start_from_epoch=0,
        enough_steps=False,
    ) -> dict:
        """One phase; with `enough_steps`, at least MIN_STEPS steps, however few the images."""
        patience = PATIENCE
        if enough_steps:
            epochs = max(epochs, math.ceil(MIN_STEPS / self.steps))
            patience = max(PATIENCE, math.ceil(PATIENCE_STEPS / self.steps))
        lr = lr * self.lr_scale
        t = self.teaching
        model.compile(
            optimizer=keras.optimizers.Adam(lr),
            loss=t.loss() if t else "sparse_categorical_crossentropy",
            metrics=[t.metric() if t else "accuracy"],
        )
        stop = _EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True, start_from_epoch=start_from_epoch
        )
        start = time.perf_counter()
        history = model.fit(
            self._dataset(*train_xy, training=True),
            validation_data=self._dataset(*val_xy, False),
            epochs=epochs,
            verbose=0,
            callbacks=[stop, *extra_callbacks, _Progress(name, epochs, self.steps, self.log)],
        )
        h = history.history
        first = min(start_from_epoch, len(h["val_loss"]) - 1)  # epochs before it were not candidates
        best = first + int(np.argmin(h["val_loss"][first:]))
        return {
            "phase": name,
            "epochs": len(h["loss"]),
            "lr": lr,
            "seconds": round(time.perf_counter() - start, 2),
            "best_epoch": best + 1,
            "val_loss": float(h["val_loss"][best]),
            "val_accuracy": float(h["val_accuracy"][best]),
        }

    def full(self, name, model, epochs, lr, sparsity=None, patient_until=0, enough_steps=False):
        """Fit the whole model (trainable layers as set), pruning it on the way if asked."""
        if not sparsity:
            return model, self._fit(
                name,
                model,
                self.train_xy,
                self.val_xy,
                epochs,
                lr,
                start_from_epoch=patient_until,
                enough_steps=enough_steps,
            )
        wrapped, callbacks, full_epoch = pruning.wrap(model, sparsity, self.steps, epochs)
        # Weights from before the schedule ends are not sparse enough: never stop or restore there.
        phase = self._fit(
            name,
            wrapped,
            self.train_xy,
            self.val_xy,
            epochs,
            lr,
            callbacks,
            start_from_epoch=max(full_epoch, patient_until),
        )
        return pruning.strip(wrapped), {**phase, "prune_schedule_epochs": full_epoch}

    def head_on_features(self, clf, epochs, lr) -> dict:
        """The backbone is frozen and inputs are not augmented, so its features never change:
        compute them once and train the head on them instead of re-running the backbone each epoch."""
        (train_x, train_y), (val_x, val_y) = self.train_xy, self.val_xy
        start = time.perf_counter()
        train_f = clf.features.predict(train_x.astype(np.float32), batch_size=self.batch, verbose=0)
        val_f = clf.features.predict(val_x.astype(np.float32), batch_size=self.batch, verbose=0)
        extract = time.perf_counter() - start
        phase = self._fit(
            "head (cached features)", clf.head, (train_f, train_y), (val_f, val_y), epochs, lr, enough_steps=True
        )
        # Recomputing would cost one extraction per epoch run; the head's own time is the same either way.
        estimate = phase["epochs"] * extract + phase["seconds"]
        phase["feature_cache"] = {
            "extract_seconds": round(extract, 2),
            "estimated_speedup": round(estimate / (extract + phase["seconds"]), 2),
        }
        phase["seconds"] = round(extract + phase["seconds"], 2)
        return phase


class _EarlyStopping(keras.callbacks.EarlyStopping):
    """Restores the best epoch's weights also when training runs to its last epoch (Keras 2 keeps
    the last epoch's then), so the reported best epoch is the model that is exported."""

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.stopped_epoch == 0 and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        super().on_train_end(logs)


class _Progress(keras.callbacks.Callback):
    """A progress bar per epoch on stderr, then one line with the epoch's numbers."""

    def __init__(self, name, epochs, steps, log):
        super().__init__()
        self.name, self.epochs, self.steps, self.log = name, epochs, steps, log
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.log:
            self.bar = self.log.bar(self.steps, f"{self.name} {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        if self.bar:
            self.bar.update(1)

    def on_epoch_end(self, epoch, logs=None):
        if self.bar:
            self.bar.finish()
            logs = logs or {}
            self.log(
                f"  {self.name} {epoch + 1}/{self.epochs}: loss {logs.get('loss', 0):.4f} "
                f"acc {logs.get('accuracy', 0):.4f}  val_loss {logs.get('val_loss', 0):.4f} "
                f"val_acc {logs.get('val_accuracy', 0):.4f}"
            )


def prune_tune(model, split, opts, log=None) -> tuple[object, dict]:
    """Prune an already trained model to `opts.prune` while fine-tuning all of it: a pruned variant
    of the very same model, to compare against it."""
    set_trainable(model.layers, len(model.layers), batchnorm=True)
    shorten_batchnorm_memory(model)
    fit = Fitter(split, opts, class_weights(split.train_y, len(split.classes)), log)
    return fit.full("prune", model, max(1, opts.fine_tune_epochs), opts.tuning_lr, opts.prune)


def train_qat(model, split, opts, log=None, teaching=None) -> tuple[object, dict]:
    """Quantization-aware training: fine-tune with fake-quantized weights and activations so the int8
    model loses less accuracy than with post-training quantization (from the teacher too, with `teaching`)."""
    from edge.converter.qat import quantization_aware

    qat_model = quantization_aware(model, preserve_sparsity=bool(opts.prune))
    fit = Fitter(split, opts, class_weights(split.train_y, len(split.classes)), log, teaching)
    _, phase = fit.full("qat", qat_model, max(1, opts.fine_tune_epochs), opts.tuning_lr)
    return qat_model, phase
