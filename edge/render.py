"""Text for people: the results of the API (edge.results, whose to_json() `--json` prints) rendered as tables
and lines. Pure functions, no I/O; the CLI prints what they return."""

import re
import time

from edge.results import (
    BenchResult,
    BundleResult,
    ConvertResult,
    DemoResult,
    EvalResult,
    ImportResult,
    Metrics,
    QuantizeResult,
    RunResult,
)

NUMBER = re.compile(r"[-+]?[\d.,]+\s?(%|x|ms|MB|M|k)?|-|")


def run_text(s: RunResult) -> str:
    """`edge run`: frames, latency, reporting, field metrics and notes."""
    inference, frame = s.latency_ms["inference"], s.latency_ms["frame"]
    fps = f"{s.fps:.1f} fps" if s.fps else "one frame"
    mode = f" ({s.source_mode})" if s.source_mode else ""
    lines = [
        f"frames     {s.frames} from {s.source}{mode} in {s.seconds:.1f} s ({fps}); "
        f"dropped {s.dropped}, failed reads {s.failures}, reopened {s.reopens}; "
        f"peak memory {s.peak_rss_mb:.0f} MB"
    ]
    if inference["runs"]:
        lines.append(
            f"latency    inference p50 {inference['p50']:.2f} ms (p99 {inference['p99']:.2f}); "
            f"capture to result p50 {frame['p50']:.2f} ms (p99 {frame['p99']:.2f})"
        )
    if s.reader:
        ms, scale = s.reader["ms"], s.reader["jpeg_scale"]
        lines.append(
            f"reader     a frame: read {ms['read']:.2f} ms, decode {ms['decode']:.2f}"
            + (f" (JPEG at 1/{scale} size)" if scale > 1 else "")
            + f", resize {ms['prepare']:.2f}"
            f" (--decode {s.options['decode']})"
        )
    if s.reporting:
        r = s.reporting
        lines.append(
            f"reported   {r['reports']} reports; sent {r['sent']}, waiting {r['pending']} in {r['outbox']}, "
            f"dropped {r['dropped']}, refused {r['rejected']}"
            + (f"; {r['empty_windows']} windows without frames not sent" if r.get("empty_windows") else "")
            + _aside(r)
            + (f"; last error: {r['last_error']}" if r["last_error"] else "")
        )
    if s.collecting:
        c = s.collecting
        lines.append(
            f"collected  {c['kept']} of {c['chosen']} frames chosen by {c['rule']} (at most "
            f"{c['max_per_hour']:g} an hour: {c['capped']} over); sent {c['sent']}, waiting {c['pending']} in "
            f"{c['outbox']}, dropped {c['dropped']}, refused {c['rejected']}"
            + (f"; {c['busy']} passed over while the sender was busy" if c["busy"] else "")
            + _aside(c)
            + (f"; last error: {c['last_error']}" if c["last_error"] else "")
        )
    if s.drift:
        lines.append(drift_line(s.drift))
    if s.evaluated:
        lines += ["", metrics_text(s)]
    lines += [f"note       {note}" for note in s.notes]
    return "\n".join(lines)


def _aside(sender: dict) -> str:
    """What a sender left for another device or kind, and a damaged file it moved aside."""
    return (f"; set aside {sender['set_aside']} (another device's or kind's)" if sender.get("set_aside") else "") + (
        f"; damaged file moved aside to {sender['moved_aside']}" if sender.get("moved_aside") else ""
    )


def drift_line(d: dict) -> str:
    """A run's drift against the fingerprint: the level, each PSI, and the report windows by level."""
    p, (watch, drift) = d["psi"], d["thresholds"]
    level = (
        f"too few frames to judge ({d['frames']:,} of {d['min_frames']:,})"
        if d["level"] == "too few"
        else f"{d['level']} on {d['frames']:,} frames"
    )
    windows = d.get("windows")
    by_level = ", ".join(f"{n} {name}" for name, n in windows.items()) if windows else ""
    return (
        f"drift      {level}: PSI top-1 {p['top1']:.3f}, margin {p['margin']:.3f}, entropy {p['entropy']:.3f}, "
        f"classes {p['classes']:.3f} (watch {watch:g}, drift {drift:g})"
        + (f"; report windows: {by_level}" if by_level else "")
    )


def bench_text(result: BenchResult) -> str:
    """`edge bench`: one row a variant or file, against the first that ran."""
    ok = [r for r in result.rows if r["status"] == "ok"]
    base = ok[0] if ok else None
    keras = any(r["keras_accuracy"] is not None for r in ok)  # variants: the Keras model each came from
    rows = [
        (
            "variant" if result.kind == "variants" else "model",
            "status",
            "bytes",
            "gzip",
            *(("Keras acc",) if keras else ()),
            "accuracy",
            "macro F1",
            "agreement",
            "p50 ms",
            "FPS",
            "smaller",
            "faster",
        )
    ]
    for r in result.rows:
        if base is None or r["status"] != "ok":  # (no base: no row is ok)
            rows.append((r["name"], "failed", *[""] * (len(rows[0]) - 2)))
            continue
        agreement = "" if r["agreement"] is None else f"{r['agreement']:.4f}"
        rows.append(
            (
                r["name"],
                "ok",
                f"{r['bytes']:,}",
                f"{r['gzip_bytes']:,}",
                *((f"{r['keras_accuracy']:.4f}",) if keras else ()),
                f"{r['accuracy']:.4f}",
                f"{r['macro_f1']:.4f}",
                agreement,
                f"{r['p50_ms']:.2f}",
                f"{r['fps']:.1f}",
                f"{base['bytes'] / r['bytes']:.2f}x",
                f"{base['p50_ms'] / r['p50_ms']:.2f}x",
            )
        )
    if result.kind == "variants" and result.images:
        head = (
            f"{result.model} @ {result.input_size}px: trained on {result.images['train']} images, "
            f"evaluated on {result.images['validation']} validation images"
        )
    else:
        head = f"on {result.data}"
    lines = [head, table(rows)]
    if base:
        lines.append(f"smaller / faster: against {base['name']}; agreement: with {result.agreement_with}")
    lines += [f"{r['name']} failed: {r['reason']}" for r in result.rows if r["status"] != "ok"]
    lines += [f"{r['name']}: measured sparsity {r['sparsity']:.3f}" for r in ok if r.get("sparsity") is not None]
    lines += [
        f"{r['name']}: WEAK, no better than always answering one class ({b['majority_accuracy']:.4f}; p = "
        f"{b['p_value']:.2g}): edge convert would not write it"
        for r in ok
        if (b := r.get("baseline")) and b["weak"]
    ]
    return "\n".join(lines)


def metrics_text(r: Metrics) -> str:
    """The per-class table, the averages and the accuracy line, as `edge eval` and `edge run` print them."""
    rows = [("class", "precision", "recall", "f1", "support")]
    rows += [
        (label, f"{c['precision']:.4f}", f"{c['recall']:.4f}", f"{c['f1']:.4f}", str(c["support"]))
        for label, c in r.per_class.items()
    ]
    rows.append(("", "", "", "", ""))
    rows += [
        (f"{name} avg", f"{average['precision']:.4f}", f"{average['recall']:.4f}", f"{average['f1']:.4f}", str(r.n))
        for name, average in (("macro", r.macro), ("weighted", r.weighted))
    ]
    top = ", ".join(f"top-{k} {v:.4f}" for k, v in r.top_k_accuracy.items() if k != "1")
    return f"{table(rows)}\n\naccuracy   {r.accuracy:.4f} on {r.n} images" + (f" ({top})" if top else "")


def eval_text(r: EvalResult) -> str:
    """`edge eval`: the metrics, latency, the model and skipped files."""
    lat = r.latency_ms
    lines = [metrics_text(r)]
    if lat["runs"]:
        lines.append(
            f"latency    p50 {lat['p50']:.2f} ms, p90 {lat['p90']:.2f}, p99 {lat['p99']:.2f}, "
            f"mean {lat['mean']:.2f} ({r.fps:.1f} images/s); first {lat['first']:.2f} ms, "
            f"{lat['runs']} runs after {lat['warmup']} warm-up"
        )
    else:
        lines.append(f"latency    first {lat['first']:.2f} ms; too few images for steady-state numbers")
    lines.append(
        f"model      {r.model}: {r.model_bytes:,} bytes, {r.input['dtype']} input "
        f"{r.input['size'][0]}x{r.input['size'][1]}, {r.runtime}, {r.threads} threads, "
        f"batch {r.batch}; reading an image {r.preprocess_ms['mean']:.2f} ms"
    )
    skipped = r.skipped
    if skipped["count"]:
        shown = "; ".join(f"{f['path']} ({f['why']})" for f in skipped["files"][:3])
        more = f" and {skipped['count'] - 3} more" if skipped["count"] > 3 else ""
        lines.append(f"skipped    {skipped['count']} file(s): {shown}{more}")
    if r.fingerprint:
        lines.append(
            f"fingerprint of the scores on these {r.n} images written to {r.fingerprint} "
            "(edge run watches drift against it)"
        )
    lines += [f"note       {note}" for note in r.notes]
    return "\n".join(lines)


def models_text(backbones) -> str:
    """`edge convert --list-models`: the backbones table."""
    rows = [("name", "input", "params", "preprocessing")]
    rows += [(b.name, str(b.input_size), f"{b.params_m:.1f}M", b.preprocessing) for b in backbones]
    return table(rows)


def table(rows) -> str:
    """Rows of strings (the first is the header): numbers right-aligned, text left-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = [i > 0 and all(NUMBER.fullmatch(r[i]) for r in rows[1:]) for i in range(len(widths))]
    return "\n".join(
        "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(r, widths, numeric, strict=True)).rstrip()
        for r in rows
    )


def against(m: dict, title: str, reference: str, file: str) -> str:
    """The exported file's accuracy and macro F1 under its reference model's (metrics from `compare`)."""
    return table(
        [(title, "accuracy", "macro F1")]
        + [
            (name, f"{m[key]['accuracy']:.4f}", f"{m[key]['macro_f1']:.4f}")
            for name, key in ((reference, m["reference"]), (file, "tflite"))
        ]
    )


def convert_text(s: ConvertResult) -> str:
    """`edge convert`: the bundle, its validation metrics, training and warnings."""
    m, q, b = s.metrics, s.quantization, s.backbone
    lines = [
        f"bundle     {s.bundle}",
        f"model      {b['name']} {b['input_size']}px, {q['mode']} (io {q['io_type']}), "
        f"{s.model['bytes']:,} bytes (gzip {s.model['gzip_bytes']:,})",
        "",
        against(m, "validation", "keras", f"tflite {q['mode']}"),
        f"agreement  {m['agreement']:.4f} on {m['n']} images",
        f"baseline   always '{s.labels[m['baseline']['majority_class']]}' {m['baseline']['majority_accuracy']:.4f}, "
        f"chance {m['baseline']['chance']:.4f}; the model beats them with p = {m['baseline']['p_value']:.2g}",
        f"latency    p50 {m['host_latency_ms']['p50']:.2f} ms on this host (run 'edge eval' on the device for its own)",
    ]
    lines += budget_lines(q.get("budget"))
    if s.sparsity:
        lines.append(f"sparsity   {s.sparsity['sparsity']:.3f} (target {s.sparsity['target']})")
    for phase in s.training["phases"]:
        cache = phase.get("feature_cache")
        extra = f", cached features ~{cache['estimated_speedup']}x faster" if cache else ""
        lines.append(f"trained    {phase['phase']}: {phase['epochs']} epochs, {phase['seconds']} s{extra}")
    tuning = s.training.get("fine_tuning")
    if tuning:
        lines.append(
            f"fine-tuned {tuning['layers']} of {tuning['of']} backbone layers at lr {tuning['lr']:g}: {tuning['why']}"
        )
    lines += teacher_lines(s.training.get("distillation"))
    lines += sensor_lines(s)
    lines.append(f"time       {s.training['seconds']} s")
    lines += warning_lines(s)
    return "\n".join(lines)


def teacher_lines(d: dict | None) -> list[str]:
    """What the student was distilled from, and what the teacher gained against the student trained alone."""
    if not d:
        return []
    t = d["teacher"]
    lines = [
        f"teacher    {t.get('backbone') or t['path']} ({t['kind']}, {t['bytes']:,} bytes): {t['accuracy']:.4f} on the "
        f"validation images; T {d['temperature']:g}, weight {d['weight']:g}, {d['unlabelled_images']} unlabelled images"
    ]
    g = d.get("gain")
    if g:
        lines.append(
            f"distilled  {g['taught']:.4f} against {g['alone']:.4f} trained alone: gain {g['gain']:+.4f} (95% interval "
            f"{g['low']:+.4f} to {g['high']:+.4f}, {g['won']} images won, {g['lost']} lost; {g['shown']})"
        )
    return lines


def warning_lines(s: BundleResult) -> list[str]:
    """A bundle's warnings, and the Edge TPU compiler's."""
    return [f"WARNING    {w}" for w in s.warnings + (s.edgetpu or {}).get("warnings", [])]


def sensor_lines(s: ConvertResult) -> list[str]:
    """The AI Camera's network: its simulated accuracy and what it takes of the sensor's memory."""
    sensor = s.imx500
    if not sensor:
        return []
    m, memory = s.metrics["imx500"], sensor["memory"] or {}
    used = (
        f", {memory['used_bytes'] / 2**20:.2f} of {memory['chip_bytes'] / 2**20:.0f} MiB of the sensor's memory"
        if memory.get("used_bytes") and memory.get("chip_bytes")
        else ""
    )
    return [
        f"imx500     {sensor['packer']['file']} {sensor['packer']['bytes']:,} bytes{used}; accuracy "
        f"{m['accuracy']:.4f} (MCT-quantized, simulated), agreement with Keras {m['agreement']:.4f}"
    ]


def prepared_lines(p: dict) -> list[str]:
    """What equalization and bias correction did before the search (nothing where plain int8 lost nothing)."""
    if not p:
        return []
    pairs = p["equalized_pairs"]
    widest = max((pair["widest_before"] for pair in pairs), default=None)
    did = (
        f"{len(pairs)} pair(s) equalized" + (f" (widest channel {widest:g}x the median)" if widest else "")
        if pairs
        else p.get("note", "nothing equalized")
    )
    tried = ", ".join(f"{t['start']} {'failed' if t['drop'] is None else format(t['drop'], '.4f')}" for t in p["tried"])
    chosen = (
        f"started from {p['chosen']}"
        if p["chosen"]
        else f"started from plain int8 ({p.get('unproven') or 'none lowered the drop'})"
    )
    return [f"prepared   {did}; {p['bias_corrected_operations']} biases correctable; drops {tried}: {chosen}"]


def budget_lines(b: dict | None) -> list[str]:
    """How int8 kept --max-drop: plain int8's drop, what was kept higher, its cost, the search's time."""
    if not b:
        return []
    plain = b["plain_int8"]
    lines = [
        f"budget     --max-drop {b['max_drop']} {'held' if b['met'] else 'MISSED'}: {b['verdict']['says']}",
        f"plain int8 accuracy {plain['accuracy']:.4f}, drop {plain['drop']:.4f}",
        *prepared_lines(b.get("prepared") or {}),
    ]
    if b["kept"]:
        shown = ", ".join(f"{k['index']} {k['type']}" for k in b["kept"][:6])
        more = f" and {len(b['kept']) - 6} more" if len(b["kept"]) > 6 else ""
        lines.append(f"kept       {len(b['kept'])} of {b['operations']} operations {b['fallback']}: {shown}{more}")
        cost = f"cost       {b['extra_bytes']:+,} bytes"
        if b["latency_ms"]:
            lat = b["latency_ms"]
            cost += (
                f"; p50 {lat['p50']:.2f} ms against plain int8 {lat['plain_int8_p50']:.2f} ms "
                f"({lat['vs_plain_int8']:.2f}x) and float32 {lat['float32_p50']:.2f} ms, on this host "
                f"({lat['cpu']}, {lat['threads']} threads)"
            )
        lines.append(cost)
    lines.append(f"search     {b['seconds']:.1f} s, {b['candidates_measured']} candidates measured")
    return lines


def quantize_text(s: QuantizeResult) -> str:
    """`edge quantize`: the bundle, its accuracy against the float model's, and how the budget was kept."""
    m, q, b = s.metrics, s.quantization, s.backbone
    lines = [
        f"bundle     {s.bundle}",
        f"model      {b['name']} {b['input_size']}px, int8 (io {q['io_type']}), {s.model['bytes']:,} bytes, "
        f"from {s.quantized_from['model']}",
        "",
        against(m, f"{m['n']} images", "float32", "int8"),
        f"agreement  {m['agreement']:.4f} with the float model",
        *budget_lines(q["budget"]),
        f"time       {s.quantized_from['seconds']} s",
    ]
    lines += warning_lines(s)
    return "\n".join(lines)


def import_text(s: ImportResult) -> str:
    """`edge import`: the bundle, what was put in its graph, how closely it follows PyTorch; for int8, its
    accuracy against the float file's and how the budget was kept."""
    m, q, b, i = s.metrics, s.quantization, s.backbone, s.imported_from
    p, a = i["preprocessing"], i["agreement"]
    size = b["input_size"] if isinstance(b["input_size"], int) else "x".join(map(str, b["input_size"]))
    converted = ", ".join(f"{name} {v}" for name, v in i["converter"].items() if name != "name")
    lines = [
        f"bundle     {s.bundle}",
        f"model      {b['name']} {size}px, {q['mode']} (io {q['io_type']}), {s.model['bytes']:,} bytes, "
        f"from {i['model']} ({i['form']}, {i['layout']}; {converted})",
        f"inside     {b['preprocessing'].removeprefix('inside the model: ')}"
        + ("; softmax added (it gives logits)" if p["softmax_added"] else ""),
        f"agreement  top-1 {a['top1']:.4f} with {a['with']} on {a['images']} images, largest score difference "
        f"{a['max_difference']:.2g}",
        "",
    ]
    if s.quantized_from:
        lines += [
            against(m, f"{m['n']} images", "float32", "int8"),
            f"agreement  {m['agreement']:.4f} with the float file",
            *budget_lines(q["budget"]),
        ]
    else:
        lines.append(against(m, f"{m['n']} images", m["reference"], "tflite float32"))
    lines.append(f"time       {i['seconds'] + (s.quantized_from or {}).get('seconds', 0):.1f} s")
    return "\n".join(lines + warning_lines(s))


def demo_text(r: DemoResult) -> str:
    """`edge demo`: what convert printed, then what eval printed for the images the model never saw."""
    return (
        f"{convert_text(r.convert)}\n\n$ edge eval {r.convert.bundle} --data {r.test_data}\n"
        f"{eval_text(r.eval)}\n\n"
        "next, with your own images (a folder of images per class):\n"
        "  edge convert --data photos/ --out bundles/mine      "
        "# fine-tunes ImageNet weights (offline: see docs/convert.md)\n"
        "  edge eval bundles/mine --data test-photos/\n"
        "  edge run bundles/mine --source 0                    # the camera"
    )


def profiles_text(profiles) -> str:
    """`edge devices list`: one line a profile."""
    rows = [("name", "board", "arch", "runtime", "model", "threads")]
    rows += [
        (
            p.name,
            p.title,
            p.arch,
            p.runtime,
            f"{p.quantize}, {p.io_type} IO" + (" (required)" if p.requires_int8 else ""),
            "all" if p.threads is None else str(p.threads),
        )
        for p in profiles
    ]
    return table(rows)


def profile_text(p) -> str:
    """`edge devices show NAME`: one profile, with its published reference latencies."""
    lines = [
        f"{p.name}: {p.title}",
        f"arch       {p.arch}",
        f"os         {p.os}, Python {p.python}",
        f"runtime    {p.runtime}" + (f", delegate {p.delegate}" if p.delegate else ""),
        f"model      {p.quantize} with {p.io_type} IO"
        + (", required" if p.requires_int8 else ", recommended")
        + (f"; compiled by {p.compiler}" if p.compiler else ""),
        f"threads    {'all cores' if p.threads is None else p.threads}",
        f"camera     {p.camera}",
        f"setup      apt: {' '.join(p.apt)}; groups: {' '.join(p.groups)}",
        f"notes      {p.notes}",
        "",
        "reference latencies (published):",
    ]
    rows = [("model", "input", "ms", "on", "source")]
    rows += [(r.model, str(r.input), f"{r.ms:g}", r.where, r.source) for r in p.references]
    return "\n".join(lines) + "\n" + table(rows)


def compile_text(bundle, record: dict) -> str:
    """`edge devices compile`: how much of the model the Edge TPU runs."""
    summary = record["compiler"]
    return (
        f"{bundle}: {summary['on_tpu']} of {summary['operations']} operations on the Edge TPU, "
        f"{(summary['on_chip_bytes'] or 0) / 2**20:.2f} MiB on-chip, "
        f"{(summary['off_chip_bytes'] or 0) / 2**20:.2f} MiB streamed"
    )


def toolchain_text(t: dict) -> str:
    """`edge devices toolchain`: one toolchain, installed or how to install it."""
    java = f"Java {t['java']}" if t["java"] else "no Java"
    if not t["installed"]:
        return f"{t['name']}: not installed ({t['title']}); {java} here. Install: {t['install']}"
    took = f", installed in {t['seconds']:.0f} s" if t.get("seconds") else ""
    packages = ", ".join(f"{name} {version}" for name, version in t["packages"].items())
    return f"{t['name']}: {t['path']}, {t['bytes'] / 1e9:.2f} GB{took}; {packages}; {java}"


def package_text(result: dict) -> str:
    """`edge package`: what was written and the one command to run on the device."""
    archive = result["package"].rsplit("/", 1)[-1]
    private = (
        "0600: it holds the device's token; copy it with scp and delete it"
        if result["holds_token"]
        else "0600: the source in it may carry a password"
    )
    return (
        f"wrote {result['package']} ({result['bytes']:,} bytes, {private}) for {result['device']}; "
        f"on the device: tar xzf {archive} && cd {result['top']} && sudo ./setup.sh"
    )


def tokens_text(tokens) -> str:
    """`edge token list`: names and roles, never the tokens."""
    rows = [("name", "role", "created")]
    rows += [(t["name"], t["role"], time.strftime("%Y-%m-%d %H:%M", time.localtime(t["created"]))) for t in tokens]
    return table(rows)


def frames_export_text(r: dict) -> str:
    """`edge frames export`: what was written, and the classes the models did not know."""
    lines = [
        f"exported {r['frames']} labelled frames from {', '.join(r['devices'])} to {r['out']}",
        table([("class", "frames"), *((label, str(n)) for label, n in r["classes"].items())]),
    ]
    lines += [
        f"new class  {label}: {n} frames labelled with a class the model did not know; training on this export adds it"
        for label, n in r["new_classes"].items()
    ]
    if r.get("unlabelled") is not None:
        lines.append(f"unlabelled {r['unlabelled']} frames no one labelled yet, in {r['out']}/_unlabelled/")
    teacher = " --teacher BUNDLE (it labels _unlabelled/)" if r.get("unlabelled") else ""
    lines.append(f"next: edge convert --data ORIGINAL --data {r['out']}{teacher} (classes merge by name)")
    return "\n".join(lines)


def push_text(r: dict) -> str:
    """`edge models push`: the version the host gave, and what was sent."""
    how = "new" if r["new"] else "the host held this very release already"
    return (
        f"{r['name']}@{r['version']} ({how}): {r['files']} files, {r['bytes_sent']:,} bytes sent, "
        f"{r['bytes_held']:,} held already; signed by key {r['key_id']}"
    )


def versions_text(r: dict) -> str:
    """`edge models list`: one line a version."""
    rows = [("version", "files", "bytes", "pushed", "by", "withdrawn")]
    rows += [
        (
            f"{m['name']}@{m['version']}",
            str(m["files"]),
            f"{m['bytes']:,}",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(m["pushed"])),
            m["pushed_by"],
            "yes" if m["withdrawn"] else "",
        )
        for m in r["models"]
    ]
    return table(rows) if r["models"] else "no model versions yet: push one with edge models push"


def rollout_text(r: dict) -> str:
    """`edge rollout start/status/abort`: the stage, each device's version, the history."""

    def shown(version):
        return (
            f"{version['model']}@{version['version']}"
            if version and version.get("version")
            else ("the model it was started with" if version else "-")
        )

    rows = [("device", "stage", "told", "running")]
    rows += [
        (
            d["device"],
            "canary" if d["canary"] else f"wave {d['wave']}",
            shown(d["told"]),
            f"{d['running'][0]}@{d['running'][1]}" if d["running"] else "?",
        )
        for d in r["devices"]
    ]
    history = "\n".join(f"  {time.strftime('%H:%M:%S', time.localtime(h['at']))}  {h['event']}" for h in r["history"])
    state = f"wave {r['stage']} of {len(r['waves'])}" if r["state"] == "wave" else r["state"]
    return f"rollout {r['id']}: {r['model']}@{r['version']} {state}\n{table(rows)}\n{history}"
