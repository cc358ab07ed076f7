package tenmin.tools.resize;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;

import tenmin.core.InputException;
import tenmin.core.PyText;
import tenmin.core.Reporter.Level;
import tenmin.core.Reporter;
import tenmin.core.Tasks;
import tenmin.engine.blas.OpenBlas;
import tenmin.formats.Half;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;
import tenmin.lora.SdxlKeyMap;
import tenmin.lora.SdxlKeyMap.Target;
import tenmin.tools.resize.WorkPool.Job;
import tenmin.tools.resize.WorkPool.Scratch;

/**
 * {@code resize}: shrinks LoRAs by keeping, per layer, the singular directions of the delta weight
 * that score above a threshold relative to the base checkpoint (elias-gaeros/resize_lora,
 * postprocess-spec §2; behaviour of the 2024 version the guide uses, with the text encoder 2 q/k
 * pairing corrected unless {@link ResizeConfig#compat()}).
 *
 * <p>Per LoRA: pair modules with checkpoint weights and validate everything; decompose every module
 * through its low-rank factors ({@link LowRankSvd}) while reading the base norms the recipes need
 * (both in parallel, {@link ResizeConfig#threads()} workers); score and cut per recipe
 * ({@link Scoring}); build the new factors and write one file per recipe atomically. Nothing is written
 * before every input has been validated and every recipe of the LoRA scored and named.
 */
public final class Resize {
    /** A layer whose largest scaled singular value is below this is dropped with a warning (§2.4). */
    static final double ZERO_LAYER_LIMIT = 1e-6;
    /** LoRA files up to this size stay mapped between their two reads (see {@link #keepMapped}). */
    static final long KEEP_MAPPED_BYTES = 512L << 20;
    /** Columns per block of {@link #gramOfRows}: 256 rows of 512 doubles, 1 MiB, stay in L2. */
    private static final int GRAM_BLOCK = 512;
    /** Elements per step of the fp16 conversions (a small buffer that stays in L1). */
    private static final int CONVERT_CHUNK = 4096;
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One file written: which LoRA and recipe, where, the final threshold and how many modules it holds. */
    public record Output(Path lora, Recipe recipe, Path file, double threshold, int modules) {
    }

    /** A recipe's outcome, the file it goes to, and its scoring log lines (printed just before it is written). */
    private record Planned(Scoring.Outcome outcome, Path file, Deferred log) {
    }

    /**
     * Holds a recipe's scoring lines until its file is written, so the log reads as resize_lora's (per
     * recipe: threshold, layers, quantiles, {@code Saving}) although every recipe is scored before any write.
     */
    private static final class Deferred implements Reporter {
        private final Reporter target;
        private final List<Map.Entry<Level, String>> lines = new ArrayList<>();

        Deferred(Reporter target) {
            this.target = target;
        }

        @Override
        public void log(Level level, String line) {
            if (target.enabled(level)) {
                lines.add(Map.entry(level, line));
            }
        }

        @Override
        public boolean enabled(Level level) {
            return target.enabled(level);
        }

        @Override
        public Progress progress(String label, long total) {
            return target.progress(label, total);
        }

        void flush() {
            for (Map.Entry<Level, String> e : lines) {
                target.log(e.getKey(), e.getValue());
            }
            lines.clear();
        }
    }

    private final ResizeConfig config;
    private final Reporter reporter;
    private final WorkPool pool;
    private final Future<Linalg> linalgLoading;
    private Linalg linalg;
    private final Map<Target, Float> frobenius = new ConcurrentHashMap<>();
    private final Map<Target, Float> spectral = new ConcurrentHashMap<>();
    /** The reference's "Loading base weight" lines, logged where it would print them (across the run's LoRAs). */
    private final BaseLoadLog loads = new BaseLoadLog();

    private Resize(ResizeConfig config, Reporter reporter, WorkPool pool, Future<Linalg> linalg) {
        this.config = config;
        this.reporter = reporter;
        this.pool = pool;
        this.linalgLoading = linalg;
    }

    /** The linear algebra, once its loading has finished (logged at -vv). */
    private Linalg linalg() {
        if (linalg == null) {
            linalg = Tasks.await(linalgLoading, "finding OpenBLAS");
            reporter.log(Level.DEBUG, "DEBUG:root:Linear algebra: " + linalg.describe());
        }
        return linalg;
    }

    /** Runs a resize; bad inputs throw {@link InputException} before anything is written. */
    public static List<Output> run(ResizeConfig config, Reporter reporter) throws IOException {
        // finding and loading OpenBLAS (tens of milliseconds) overlaps with reading headers and pairing modules
        FutureTask<Linalg> linalg = new FutureTask<>(() -> Linalg.of(config.linalg()));
        Thread.ofPlatform().daemon().name("resize-linalg").start(linalg);
        try (WorkPool pool = new WorkPool(config.threads())) {
            return new Resize(config, reporter, pool, linalg).runAll();
        }
    }

    private List<Output> runAll() throws IOException {
        List<SafetensorsFile> open = new ArrayList<>();
        try {
            SafetensorsFile ckpt = SafetensorsFile.open(config.checkpoint());
            open.add(ckpt);
            Map<String, long[]> shapes = new LinkedHashMap<>();
            for (String name : ckpt.names()) {
                shapes.put(name, ckpt.info(name).shape());
            }
            SdxlKeyMap keyMap = SdxlKeyMap.of(shapes);
            Map<String, Target> targets = Pairing.targets(keyMap, config.compat());
            Map<Target, String> correctNames = new HashMap<>();
            keyMap.modules().forEach((name, t) -> correctNames.put(t, name));

            List<SafetensorsFile> loras = new ArrayList<>();
            List<List<Pairing.Module>> paired = new ArrayList<>();
            List<Deferred> pairingLogs = new ArrayList<>();
            for (Path p : config.loras()) {
                SafetensorsFile f = SafetensorsFile.open(p);
                open.add(f);
                loras.add(f);
                Deferred log = new Deferred(reporter); // its warnings follow the LoRA's "Processing" line
                paired.add(Pairing.pair(ckpt, targets, f, log)); // validate every input before any work
                pairingLogs.add(log);
            }
            checkOutputs();
            NormsCache cache = config.normsCache() == null ? NormsCache.disabled()
                    : NormsCache.load(config.normsCache(), config.checkpoint(), reporter);

            List<Output> outputs = new ArrayList<>();
            Set<Path> written = new HashSet<>();
            for (int i = 0; i < loras.size(); i++) {
                SafetensorsFile lora = loras.get(i);
                reporter.log(Level.INFO, "INFO:root:Processing LoRA model: " + lora.path());
                pairingLogs.get(i).flush();
                List<Pairing.Module> modules = paired.get(i);
                List<Scoring.Layer> layers = analyse(ckpt, lora, modules, cache, correctNames);
                outputs.addAll(write(lora, layers, plan(lora, layers, written)));
            }
            cache.save(reporter);
            return outputs;
        } finally {
            for (SafetensorsFile f : open) {
                f.close();
            }
        }
    }

    /** The output folders exist or can be created; two LoRAs never write the same names. */
    private void checkOutputs() {
        Set<Path> stems = new HashSet<>();
        for (Path lora : config.loras()) {
            Path dir = outputDir(lora);
            Path key = dir.toAbsolutePath().normalize().resolve(stem(lora));
            if (!stems.add(key)) {
                throw new InputException(lora + ": another LoRA with the file name stem \"" + stem(lora)
                        + "\" writes to the same folder " + dir + "; use -o or rename one");
            }
        }
        if (config.outputDir() != null) {
            Path dir = config.outputDir().toAbsolutePath();
            if (Files.exists(dir) && !Files.isDirectory(dir)) {
                throw new InputException(config.outputDir() + ": output folder is a file");
            }
            Path existing = dir;
            while (existing != null && !Files.exists(existing)) {
                existing = existing.getParent();
            }
            if (existing == null || !Files.isDirectory(existing) || !Files.isWritable(existing)) {
                throw new InputException(config.outputDir() + ": output folder cannot be created");
            }
        }
    }

    private Path outputDir(Path lora) {
        if (config.outputDir() != null) {
            return config.outputDir();
        }
        Path parent = lora.getParent();
        return parent == null ? Path.of("") : parent;
    }

    /** Python's {@code Path(p).stem}: the file name without its last suffix. */
    static String stem(Path p) {
        String n = p.getFileName().toString();
        int dot = n.lastIndexOf('.');
        return dot > 0 ? n.substring(0, dot) : n;
    }

    /**
     * Decomposes every module while reading the base norms the recipes need (in parallel), drops the
     * all-zero layers with the reference's warning, and computes the subspace terms when a recipe uses them.
     */
    private List<Scoring.Layer> analyse(SafetensorsFile ckpt, SafetensorsFile lora, List<Pairing.Module> modules,
                                        NormsCache cache, Map<Target, String> correctNames) throws IOException {
        Linalg linalg = linalg();
        List<Job<LowRankSvd>> svdJobs = new ArrayList<>();
        for (Pairing.Module m : modules) {
            svdJobs.add(new Job<>((double) m.rank() * m.rank() * (m.out() + m.cols()) / 20.0,
                    () -> pool.withScratch(s -> decompose(lora, m, s, linalg))));
        }
        List<Job<?>> jobs = new ArrayList<>(svdJobs);
        BaseNorms.PageRelease pages = new BaseNorms.PageRelease(ckpt.fileSegment());
        jobs.addAll(normJobs(ckpt, modules, cache, correctNames, pages));
        try {
            pool.run("SVD", jobs, reporter);
        } finally {
            pages.flush();
        }

        List<Pairing.Module> live = new ArrayList<>();
        List<LowRankSvd> svds = new ArrayList<>();
        for (int i = 0; i < modules.size(); i++) {
            LowRankSvd svd = svdJobs.get(i).result;
            if (svd.m == 0 || svd.s[0] < ZERO_LAYER_LIMIT) {
                reporter.log(Level.WARNING, "WARNING:root:LoRA layer " + modules.get(i).name() + " is all zeroes! dim="
                        + svd.m);
                continue;
            }
            live.add(modules.get(i));
            svds.add(svd);
        }
        float[][] subspace = new float[live.size()][];
        if (anyUses("subspace")) {
            List<Job<Object>> subJobs = new ArrayList<>();
            for (int i = 0; i < live.size(); i++) {
                int li = i;
                Pairing.Module m = live.get(i);
                subJobs.add(new Job<>((double) m.out() * m.cols() * svds.get(i).m, () -> {
                    subspace[li] = subspaceTerms(ckpt, lora, m, svds.get(li));
                    return null;
                }));
            }
            pool.run("Subspace", subJobs, reporter);
        }
        List<Scoring.Layer> layers = new ArrayList<>();
        for (int i = 0; i < live.size(); i++) {
            Target t = live.get(i).base().target();
            layers.add(new Scoring.Layer(live.get(i), svds.get(i), frobenius.getOrDefault(t, Float.NaN),
                    spectral.getOrDefault(t, Float.NaN), subspace[i]));
        }
        return layers;
    }

    /**
     * Jobs for the base norms the recipes (and {@code -vv}'s rle_ckpt) need that neither the cache nor an
     * earlier LoRA of this run provides; tells {@link BaseLoadLog} which norms are known without reading.
     */
    private List<Job<Object>> normJobs(SafetensorsFile ckpt, List<Pairing.Module> modules, NormsCache cache,
                                       Map<Target, String> correctNames, BaseNorms.PageRelease pages) {
        boolean needFro = reporter.enabled(Level.DEBUG) || anyUses("fro_ckpt");
        boolean needSpn = anyUses("spn_ckpt");
        Map<Target, Pairing.Base> pendingFro = new LinkedHashMap<>();
        Map<Target, Pairing.Base> pendingSpn = new LinkedHashMap<>();
        for (Pairing.Module m : modules) {
            Pairing.Base b = m.base();
            Target t = b.target();
            String cacheName = NormsCache.nameFor(b, correctNames);
            boolean fro = needFro && !frobenius.containsKey(t) && !pendingFro.containsKey(t)
                    && !fromCache(cache.frobenius(cacheName), t, frobenius);
            boolean spn = needSpn && !spectral.containsKey(t) && !pendingSpn.containsKey(t)
                    && !fromCache(cache.spectral(cacheName), t, spectral);
            if (fro) {
                pendingFro.put(t, b);
            }
            if (spn) {
                pendingSpn.put(t, b);
            }
            if (!fro && frobenius.containsKey(t)) {
                loads.knownFrobenius(m.name()); // cached, or read for an earlier LoRA of this run
            }
            if (!spn && spectral.containsKey(t)) {
                loads.knownSpectral(m.name());
            }
        }
        List<Job<Object>> jobs = new ArrayList<>();
        for (Pairing.Base b : readingOrder(pendingFro.values())) {
            jobs.add(new Job<>(b.count() * 0.3, true, () -> {
                float v = BaseNorms.frobenius(ckpt, b, pages);
                frobenius.put(b.target(), v);
                cache.putFrobenius(NormsCache.nameFor(b, correctNames), v);
                return null;
            }));
        }
        for (Pairing.Base b : pendingSpn.values()) {
            jobs.add(new Job<>(b.count() * 60.0, () -> {
                float v = BaseNorms.spectral(BaseNorms.load(ckpt, b), b.rows(), b.cols());
                spectral.put(b.target(), v);
                cache.putSpectral(NormsCache.nameFor(b, correctNames), v);
                return null;
            }));
        }
        return jobs;
    }

    /** The norm reads in file order, so that the spans of pages released together stay tight ({@link BaseNorms.PageRelease}). */
    private static List<Pairing.Base> readingOrder(Collection<Pairing.Base> bases) {
        List<Pairing.Base> order = new ArrayList<>(bases);
        order.sort(Comparator.comparingLong((Pairing.Base b) -> b.info().begin() + b.byteOffset()));
        return order;
    }

    private static boolean fromCache(Double cached, Target t, Map<Target, Float> into) {
        if (cached == null) {
            return false;
        }
        into.put(t, cached.floatValue());
        return true;
    }

    /** Scores every recipe and names its output; two recipes naming the same file are refused here. */
    private List<Planned> plan(SafetensorsFile lora, List<Scoring.Layer> layers, Set<Path> written) {
        List<Planned> planned = new ArrayList<>();
        for (Recipe recipe : config.recipes()) {
            Deferred log = new Deferred(reporter);
            Scoring.Outcome o = Scoring.apply(recipe, layers, config.outputDtype().sizeBytes(), log, loads);
            Path file = outputDir(lora.path()).resolve(recipe.outputFileName(stem(lora.path()), o.threshold()));
            if (!written.add(file.toAbsolutePath().normalize())) {
                throw new InputException("recipe \"" + recipe.text() + "\" gives the output name " + file
                        + " a second time; change one of the recipes");
            }
            planned.add(new Planned(o, file, log));
        }
        return planned;
    }

    /** Builds and writes each planned output (each file atomically). */
    private List<Output> write(SafetensorsFile lora, List<Scoring.Layer> layers, List<Planned> planned)
            throws IOException {
        if (config.outputDir() != null) {
            Files.createDirectories(config.outputDir());
        }
        List<Output> outputs = new ArrayList<>();
        for (Planned p : planned) {
            Scoring.Outcome o = p.outcome();
            p.log().flush();
            if (o.keptLayers() == 0) {
                reporter.log(Level.WARNING, "WARNING:root:Recipe " + o.recipe().text() + " keeps no direction of any "
                        + "layer; the output holds no modules");
            }
            reporter.log(Level.INFO, "INFO:root:Saving " + PyText.path(p.file()));
            writeOutput(lora, layers, o, p.file());
            outputs.add(new Output(lora.path(), o.recipe(), p.file(), o.threshold(), o.keptLayers()));
        }
        return outputs;
    }

    private boolean anyUses(String key) {
        for (Recipe r : config.recipes()) {
            if (r.uses(key)) {
                return true;
            }
        }
        return false;
    }

    private static LowRankSvd decompose(SafetensorsFile lora, Pairing.Module m, Scratch s, Linalg linalg) {
        boolean release = !keepMapped(lora);
        double alphaFactor = lora.readScalar(m.alpha().name()) / m.rank();
        if (linalg instanceof BlasLinalg blas) { // OpenBLAS takes double: read the factors straight into double
            double[] gd = gramOfRows(lora, m.down(), m.rank(), m.cols(), s.doubles(Scratch.DOWN, m.rank() * GRAM_BLOCK),
                    blas.blas(), release);
            double[] up = readDoubles(lora, m.up(), s.doubles(Scratch.UP, m.out() * m.rank()), release);
            double[] gu = blas.gramOfColumns(up, m.out(), m.rank());
            return LowRankSvd.ofGrams(gu, gd, m.out(), m.rank(), m.cols(), alphaFactor, linalg);
        }
        float[] down = readFloats(lora, m.down(), s.floats(Scratch.DOWN, m.rank() * m.cols()), release);
        float[] up = readFloats(lora, m.up(), s.floats(Scratch.UP, m.out() * m.rank()), release);
        return LowRankSvd.of(up, m.out(), m.rank(), down, m.cols(), alphaFactor, linalg);
    }

    private float[] subspaceTerms(SafetensorsFile ckpt, SafetensorsFile lora, Pairing.Module m, LowRankSvd svd) {
        boolean release = !keepMapped(lora);
        float[][] uv = svd.vectors(readFloats(lora, m.up(), new float[(int) m.up().numel()], release),
                readFloats(lora, m.down(), new float[(int) m.down().numel()], release));
        float[] w = BaseNorms.load(ckpt, m.base());
        return BaseNorms.subspace(w, m.out(), m.cols(), uv[0], uv[1], svd.m);
    }

    /**
     * Whether the LoRA's pages stay mapped from the decompositions to the output factors, which read every
     * factor again: true up to {@link #KEEP_MAPPED_BYTES} (the guide's LoCon is 234 MB: faulting its pages in
     * twice costs more than keeping them), else each tensor's pages are released after each read.
     */
    private static boolean keepMapped(SafetensorsFile lora) {
        return lora.fileSegment().byteSize() <= KEEP_MAPPED_BYTES;
    }

    /**
     * {@code t·tᵀ} (R, R) of a LoRA factor {@code t} (R, N) by OpenBLAS, read straight from the file into double
     * in blocks of {@link #GRAM_BLOCK} columns that stay in cache ({@code block} holds at least R·GRAM_BLOCK
     * values): the widened factor never goes through main memory.
     */
    private static double[] gramOfRows(SafetensorsFile f, TensorInfo t, int rank, int cols, double[] block,
                                       OpenBlas blas, boolean release) {
        Widener w = new Widener(f, t, Math.min(cols, GRAM_BLOCK));
        double[] g = blas.gramRowsInBlocks(rank, cols, GRAM_BLOCK, block, (c0, cb, out) -> {
            for (int j = 0; j < rank; j++) {
                w.widen((long) j * cols + c0, cb, out, j * cb);
            }
        });
        if (release) {
            f.release(t.name());
        }
        return g;
    }

    /** Reads runs of a LoRA tensor's elements into double arrays: fp16 straight to double, other types through fp32. */
    private static final class Widener {
        private final TensorInfo tensor;
        private final MemorySegment seg;
        private final short[] raw;
        private final float[] tmp;

        /** For runs of at most {@code maxRun} elements. */
        Widener(SafetensorsFile file, TensorInfo tensor, int maxRun) {
            this.tensor = tensor;
            this.seg = file.segment(tensor.name());
            boolean half = tensor.dtype() == StDType.F16;
            this.raw = half ? new short[maxRun] : null;
            this.tmp = half ? null : new float[maxRun];
        }

        /** {@code out[at + i] = element (first + i)} for {@code i < n}. */
        void widen(long first, int n, double[] out, int at) {
            long offset = first * tensor.dtype().sizeBytes();
            if (raw != null) {
                MemorySegment.copy(seg, SHORT_LE, offset, raw, 0, n);
                Half.f16ToF64(raw, n, out, at);
                return;
            }
            SafetensorsFile.convertToFloats(seg.asSlice(offset), tensor.dtype(), tmp, 0, n, tensor.name());
            for (int i = 0; i < n; i++) {
                out[at + i] = tmp[i];
            }
        }
    }

    /**
     * A tensor of the LoRA widened to double into the start of {@code out} (at least numel long; fp16 straight to
     * double, other types through fp32); the pages are released when {@code release}.
     */
    static double[] readDoubles(SafetensorsFile f, TensorInfo t, double[] out, boolean release) {
        int count = (int) t.numel();
        int chunk = Math.max(1, Math.min(count, CONVERT_CHUNK));
        Widener w = new Widener(f, t, chunk);
        for (int start = 0; start < count; start += chunk) {
            w.widen(start, Math.min(chunk, count - start), out, start);
        }
        if (release) {
            f.release(t.name());
        }
        return out;
    }

    /** A tensor of the LoRA as fp32 (vectorised fp16 conversion); its pages are released afterwards. */
    static float[] readFloats(SafetensorsFile f, TensorInfo t) {
        return readFloats(f, t, new float[(int) t.numel()]);
    }

    /** {@link #readFloats(SafetensorsFile, TensorInfo)} into the start of {@code out} (at least numel long). */
    static float[] readFloats(SafetensorsFile f, TensorInfo t, float[] out) {
        return readFloats(f, t, out, true);
    }

    /** {@link #readFloats(SafetensorsFile, TensorInfo, float[])}; the pages are released when {@code release}. */
    static float[] readFloats(SafetensorsFile f, TensorInfo t, float[] out, boolean release) {
        MemorySegment seg = f.segment(t.name());
        int count = (int) t.numel();
        if (t.dtype() == StDType.F16) {
            short[] raw = new short[Math.max(1, Math.min(count, CONVERT_CHUNK))];
            for (int start = 0; start < count; start += raw.length) {
                int n = Math.min(raw.length, count - start);
                MemorySegment.copy(seg, SHORT_LE, 2L * start, raw, 0, n);
                Half.f16ToF32(raw, n, out, start);
            }
        } else {
            SafetensorsFile.convertToFloats(seg, t.dtype(), out, 0, count, t.name());
        }
        if (release) {
            f.release(t.name());
        }
        return out;
    }

    /**
     * Writes the output file of one recipe (new factors of every kept layer, input metadata plus resize_params)
     * while the workers compute it: the factors are computed in the file's tensor order and each is written as
     * soon as it is ready, so the file's bytes never pile up on the heap.
     */
    private void writeOutput(SafetensorsFile lora, List<Scoring.Layer> layers, Scoring.Outcome o, Path file)
            throws IOException {
        StDType dtype = config.outputDtype();
        List<Integer> which = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            if (o.kept().get(i).length > 0) {
                which.add(i);
            }
        }
        List<Future<byte[][]>> factors = new ArrayList<>(Collections.nCopies(which.size(), null));
        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(lora.metadata());
        w.metadata("resize_params", o.recipe().resizeParamsJson(o.threshold()));
        Map<String, Integer> moduleOfDown = new HashMap<>();
        try (Reporter.Progress progress = reporter.progress("Writing", which.size())) {
            for (int k = 0; k < which.size(); k++) {
                int slot = k;
                Scoring.Layer l = layers.get(which.get(k));
                Pairing.Module m = l.module();
                int d = o.kept().get(which.get(k)).length;
                long[] downShape = new long[1 + m.inputShape().length];
                downShape[0] = d;
                System.arraycopy(m.inputShape(), 0, downShape, 1, m.inputShape().length);
                long[] upShape = m.upIs4d() ? new long[] {m.out(), d, 1, 1} : new long[] {m.out(), d};
                String down = m.name() + ".lora_down.weight";
                moduleOfDown.put(down, k);
                w.add(down, dtype, downShape, out -> out.write(take(factors.get(slot), 1)));
                w.add(m.name() + ".lora_up.weight", dtype, upShape, out -> {
                    out.write(take(factors.get(slot), 0));
                    progress.advance(1);
                });
                double alphaFactor = lora.readScalar(m.alpha().name()) / m.rank();
                w.addFloats(m.name() + ".alpha", dtype, new long[0], new float[] {(float) (alphaFactor * d)});
                if (m.doraScale() != null) {
                    w.addFloats(m.name() + ".dora_scale", dtype, m.doraScale().shape(), readFloats(lora, m.doraScale()));
                }
            }
            // start the factors in the order the writer asks for them (one queue: first submitted, first started)
            for (String name : w.tensorOrder()) {
                Integer k = moduleOfDown.get(name);
                if (k != null) {
                    factors.set(k, pool.submit(factorsJob(lora, layers.get(which.get(k)), o.kept().get(which.get(k)),
                            o.recipe().rescale(), dtype)));
                }
            }
            boolean done = false;
            try {
                w.write(file);
                done = true;
            } finally {
                if (!done) {
                    for (Future<byte[][]> f : factors) {
                        f.cancel(true);
                    }
                }
            }
        }
    }

    /** The new factors of one layer as output bytes: {up, down}. */
    private Callable<byte[][]> factorsJob(SafetensorsFile lora, Scoring.Layer l, int[] kept, double rescale,
                                          StDType dtype) {
        Pairing.Module m = l.module();
        double alphaFactor = lora.readScalar(m.alpha().name()) / m.rank();
        int d = kept.length;
        return () -> pool.withScratch(s -> {
            float[][] f = l.svd().factors(kept, rescale, alphaFactor,
                    readFloats(lora, m.up(), s.floats(Scratch.UP, m.out() * m.rank())),
                    readFloats(lora, m.down(), s.floats(Scratch.DOWN, m.rank() * m.cols())),
                    s.floats(Scratch.OUT, d * m.cols()));
            return new byte[][] {toBytes(f[0], m.out() * d, dtype), toBytes(f[1], d * m.cols(), dtype)};
        });
    }

    /** Half {@code i} of a layer's output bytes, dropped from the result once taken (the writer needs it once). */
    private static byte[] take(Future<byte[][]> factors, int i) {
        byte[][] both = Tasks.await(factors, "computing the new factors");
        byte[] b = both[i];
        both[i] = null;
        return b;
    }

    /** The first {@code n} fp32 values as little-endian bytes of {@code dtype} (F16 round-to-nearest-even, or F32). */
    static byte[] toBytes(float[] v, int n, StDType dtype) {
        byte[] b = new byte[n * dtype.sizeBytes()];
        MemorySegment dst = MemorySegment.ofArray(b);
        if (dtype == StDType.F32) {
            MemorySegment.copy(v, 0, dst, FLOAT_LE, 0, n);
            return b;
        }
        short[] h = new short[Math.max(1, Math.min(n, CONVERT_CHUNK))];
        for (int start = 0; start < n; start += h.length) {
            int len = Math.min(h.length, n - start);
            Half.f32ToF16(v, start, len, h);
            MemorySegment.copy(h, 0, dst, SHORT_LE, 2L * start, len);
        }
        return b;
    }
}
