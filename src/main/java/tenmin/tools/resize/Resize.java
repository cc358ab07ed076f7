package tenmin.tools.resize;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.core.Reporter.Level;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.formats.TensorInfo;
import tenmin.lora.SdxlKeyMap;
import tenmin.lora.SdxlKeyMap.Target;

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
 * before every input has been validated and every output of the LoRA computed.
 */
public final class Resize {
    /** A layer whose largest scaled singular value is below this is dropped with a warning (§2.4). */
    static final double ZERO_LAYER_LIMIT = 1e-6;
    /** Jobs cheaper than this fraction of a phase's total run first, warming up the JIT. */
    private static final double WARM_FRACTION = 1e-4;

    /** Elements per step of the fp16 conversions (a small buffer that stays in L1). */
    private static final int CONVERT_CHUNK = 4096;
    private static final ValueLayout.OfShort SHORT_LE = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** One file written: which LoRA and recipe, where, the final threshold and how many modules it holds. */
    public record Output(Path lora, Recipe recipe, Path file, double threshold, int modules) {
    }

    private final ResizeConfig config;
    private final Reporter reporter;
    private final ExecutorService pool;
    private final java.util.concurrent.BlockingQueue<Scratch> scratch;
    private final Map<Target, Float> frobenius = new ConcurrentHashMap<>();
    private final Map<Target, Float> spectral = new ConcurrentHashMap<>();

    private Resize(ResizeConfig config, Reporter reporter, ExecutorService pool) {
        this.config = config;
        this.reporter = reporter;
        this.pool = pool;
        this.scratch = new java.util.concurrent.ArrayBlockingQueue<>(config.threads());
        for (int i = 0; i < config.threads(); i++) {
            scratch.add(new Scratch());
        }
    }

    /**
     * Work arrays of one worker: the LoRA factors read as fp32 and the new down factor, reused from job to
     * job so that the multi-megabyte temporaries of the large conv modules do not pile up as garbage (the
     * heap, and so the resident memory, would otherwise grow by hundreds of MB before a collection).
     */
    private static final class Scratch {
        private final float[][] slots = new float[3][];

        float[] floats(int slot, int n) {
            float[] b = slots[slot];
            if (b == null || b.length < n) {
                b = new float[n];
                slots[slot] = b;
            }
            return b;
        }
    }

    private static final int DOWN = 0;
    private static final int UP = 1;
    private static final int OUT = 2;

    /** Runs {@code work} with a scratch set taken from the pool (one per worker thread). */
    private <T> T withScratch(java.util.function.Function<Scratch, T> work) throws InterruptedException {
        Scratch s = scratch.take();
        try {
            return work.apply(s);
        } finally {
            scratch.add(s);
        }
    }

    /** Runs a resize; bad inputs throw {@link InputException} before anything is written. */
    public static List<Output> run(ResizeConfig config, Reporter reporter) throws IOException {
        ExecutorService pool = Executors.newFixedThreadPool(config.threads(), r -> {
            Thread t = new Thread(r, "resize-worker");
            t.setDaemon(true);
            return t;
        });
        try {
            return new Resize(config, reporter, pool).runAll();
        } finally {
            pool.shutdownNow();
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
            for (Path p : config.loras()) {
                SafetensorsFile f = SafetensorsFile.open(p);
                open.add(f);
                loras.add(f);
                Pairing.pair(ckpt, targets, f, Reporter.SILENT); // validate every input before any work
            }
            checkOutputs();
            NormsCache cache = config.normsCache() == null ? NormsCache.disabled()
                    : NormsCache.load(config.normsCache(), config.checkpoint(), reporter);

            List<Output> outputs = new ArrayList<>();
            Set<Path> written = new HashSet<>();
            for (SafetensorsFile lora : loras) {
                outputs.addAll(resizeOne(ckpt, targets, correctNames, lora, cache, written));
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

    private List<Output> resizeOne(SafetensorsFile ckpt, Map<String, Target> targets, Map<Target, String> correctNames,
                                   SafetensorsFile lora, NormsCache cache, Set<Path> written) throws IOException {
        reporter.log(Level.INFO, "INFO:root:Processing LoRA model: " + lora.path());
        List<Pairing.Module> modules = Pairing.pair(ckpt, targets, lora, reporter);
        boolean needFro = reporter.enabled(Level.DEBUG) || anyUses("fro_ckpt");
        boolean needSpn = anyUses("spn_ckpt");
        boolean needSub = anyUses("subspace");

        // Decompositions and base norms, all in parallel.
        List<Job<?>> jobs = new ArrayList<>();
        List<Job<LowRankSvd>> svdJobs = new ArrayList<>();
        for (Pairing.Module m : modules) {
            Job<LowRankSvd> j = new Job<>((double) m.rank() * m.rank() * (m.out() + m.cols()) / 20.0,
                    () -> withScratch(s -> decompose(lora, m, s)));
            svdJobs.add(j);
            jobs.add(j);
        }
        Map<Target, Pairing.Base> pendingFro = new LinkedHashMap<>();
        Map<Target, Pairing.Base> pendingSpn = new LinkedHashMap<>();
        for (Pairing.Module m : modules) {
            Pairing.Base b = m.base();
            String cacheName = NormsCache.nameFor(b, correctNames);
            if (needFro && !frobenius.containsKey(b.target()) && !pendingFro.containsKey(b.target())) {
                Double c = cache.frobenius(cacheName);
                if (c != null) {
                    frobenius.put(b.target(), c.floatValue());
                } else {
                    pendingFro.put(b.target(), b);
                    debugLoading(b, m);
                }
            }
            if (needSpn && !spectral.containsKey(b.target()) && !pendingSpn.containsKey(b.target())) {
                Double c = cache.spectral(cacheName);
                if (c != null) {
                    spectral.put(b.target(), c.floatValue());
                } else {
                    pendingSpn.put(b.target(), b);
                    if (!pendingFro.containsKey(b.target())) {
                        debugLoading(b, m);
                    }
                }
            }
        }
        for (Pairing.Base b : pendingFro.values()) {
            Job<Object> nj = new Job<>(b.count() * 0.3, () -> {
                float v = BaseNorms.frobenius(ckpt, b);
                frobenius.put(b.target(), v);
                cache.putFrobenius(NormsCache.nameFor(b, correctNames), v);
                return null;
            });
            nj.memoryBound = true;
            jobs.add(nj);
        }
        for (Pairing.Base b : pendingSpn.values()) {
            jobs.add(new Job<>(b.count() * 60.0, () -> {
                float v = BaseNorms.spectral(BaseNorms.load(ckpt, b), b.rows(), b.cols());
                spectral.put(b.target(), v);
                cache.putSpectral(NormsCache.nameFor(b, correctNames), v);
                return null;
            }));
        }
        runJobs("SVD", jobs);

        List<Scoring.Layer> layers = new ArrayList<>();
        List<Pairing.Module> live = new ArrayList<>();
        List<LowRankSvd> svds = new ArrayList<>();
        for (int i = 0; i < modules.size(); i++) {
            Pairing.Module m = modules.get(i);
            LowRankSvd svd = svdJobs.get(i).result;
            if (svd.m == 0 || svd.s[0] < ZERO_LAYER_LIMIT) {
                reporter.log(Level.WARNING, "WARNING:root:LoRA layer " + m.name() + " is all zeroes! dim=" + svd.m);
                continue;
            }
            live.add(m);
            svds.add(svd);
        }
        float[][] subspace = new float[live.size()][];
        if (needSub) {
            List<Job<?>> subJobs = new ArrayList<>();
            for (int i = 0; i < live.size(); i++) {
                int li = i;
                Pairing.Module m = live.get(i);
                subJobs.add(new Job<>((double) m.out() * m.cols() * svds.get(i).m, () -> {
                    subspace[li] = subspaceTerms(ckpt, lora, m, svds.get(li));
                    return null;
                }));
            }
            runJobs("Subspace", subJobs);
        }
        for (int i = 0; i < live.size(); i++) {
            Target t = live.get(i).base().target();
            layers.add(new Scoring.Layer(live.get(i), svds.get(i), frobenius.getOrDefault(t, Float.NaN),
                    spectral.getOrDefault(t, Float.NaN), subspace[i]));
        }

        // Score every recipe, name every output, then write.
        int elementBytes = config.outputDtype().sizeBytes();
        List<Scoring.Outcome> outcomes = new ArrayList<>();
        List<Path> files = new ArrayList<>();
        for (Recipe recipe : config.recipes()) {
            Scoring.Outcome o = Scoring.apply(recipe, layers, elementBytes, reporter);
            Path file = outputDir(lora.path()).resolve(recipe.outputFileName(stem(lora.path()), o.threshold()));
            Path key = file.toAbsolutePath().normalize();
            if (!written.add(key)) {
                throw new InputException("recipe \"" + recipe.text() + "\" gives the output name " + file
                        + " a second time; change one of the recipes");
            }
            outcomes.add(o);
            files.add(file);
        }
        if (config.outputDir() != null) {
            Files.createDirectories(config.outputDir());
        }
        List<Output> outputs = new ArrayList<>();
        for (int r = 0; r < outcomes.size(); r++) {
            Scoring.Outcome o = outcomes.get(r);
            if (o.keptLayers() == 0) {
                reporter.log(Level.WARNING, "WARNING:root:Recipe " + o.recipe().text() + " keeps no direction of any "
                        + "layer; the output holds no modules");
            }
            SafetensorsWriter writer = buildOutput(lora, layers, o);
            reporter.log(Level.INFO, "INFO:root:Saving " + files.get(r));
            writer.write(files.get(r));
            outputs.add(new Output(lora.path(), o.recipe(), files.get(r), o.threshold(), o.keptLayers()));
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

    private void debugLoading(Pairing.Base b, Pairing.Module m) {
        if (reporter.enabled(Level.DEBUG)) {
            reporter.log(Level.DEBUG, "DEBUG:root:Loading base weight " + Pairing.baseLabel(b.target()) + " for "
                    + m.name());
        }
    }

    private LowRankSvd decompose(SafetensorsFile lora, Pairing.Module m, Scratch s) {
        float[] down = readFloats(lora, m.down(), s.floats(DOWN, m.rank() * m.cols()));
        float[] up = readFloats(lora, m.up(), s.floats(UP, m.out() * m.rank()));
        double alphaFactor = lora.readScalar(m.alpha().name()) / m.rank();
        return LowRankSvd.of(up, m.out(), m.rank(), down, m.cols(), alphaFactor);
    }

    private float[] subspaceTerms(SafetensorsFile ckpt, SafetensorsFile lora, Pairing.Module m, LowRankSvd svd) {
        float[][] uv = svd.vectors(readFloats(lora, m.up()), readFloats(lora, m.down()));
        float[] w = BaseNorms.load(ckpt, m.base());
        return BaseNorms.subspace(w, m.out(), m.cols(), uv[0], uv[1], svd.m);
    }

    /** A tensor of the LoRA as fp32 (vectorised fp16 conversion); its pages are released afterwards. */
    static float[] readFloats(SafetensorsFile f, TensorInfo t) {
        return readFloats(f, t, new float[(int) t.numel()]);
    }

    /** {@link #readFloats(SafetensorsFile, TensorInfo)} into the start of {@code out} (at least numel long). */
    static float[] readFloats(SafetensorsFile f, TensorInfo t, float[] out) {
        MemorySegment seg = f.segment(t.name());
        int count = (int) t.numel();
        if (t.dtype() == StDType.F16) {
            short[] raw = new short[Math.max(1, Math.min(count, CONVERT_CHUNK))];
            for (int start = 0; start < count; start += raw.length) {
                int n = Math.min(raw.length, count - start);
                MemorySegment.copy(seg, SHORT_LE, 2L * start, raw, 0, n);
                for (int i = 0; i < n; i++) { // vectorised by C2
                    out[start + i] = Float.float16ToFloat(raw[i]);
                }
            }
        } else {
            SafetensorsFile.convertToFloats(seg, t.dtype(), out, 0, count, t.name());
        }
        f.release(t.name());
        return out;
    }

    /** The output file of one recipe: new factors of every kept layer, input metadata plus resize_params. */
    private SafetensorsWriter buildOutput(SafetensorsFile lora, List<Scoring.Layer> layers, Scoring.Outcome o)
            throws IOException {
        StDType dtype = config.outputDtype();
        List<Job<?>> jobs = new ArrayList<>();
        List<Job<byte[][]>> factorJobs = new ArrayList<>();
        List<Integer> which = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            int[] kept = o.kept().get(i);
            if (kept.length == 0) {
                continue;
            }
            Scoring.Layer l = layers.get(i);
            Pairing.Module m = l.module();
            double alphaFactor = lora.readScalar(m.alpha().name()) / m.rank();
            int d = kept.length;
            Job<byte[][]> j = new Job<>((double) d * m.rank() * (m.out() + m.cols()), () -> withScratch(s -> {
                float[][] f = l.svd().factors(kept, o.recipe().rescale(), alphaFactor,
                        readFloats(lora, m.up(), s.floats(UP, m.out() * m.rank())),
                        readFloats(lora, m.down(), s.floats(DOWN, m.rank() * m.cols())),
                        s.floats(OUT, d * m.cols()));
                return new byte[][] {toBytes(f[0], m.out() * d, dtype), toBytes(f[1], d * m.cols(), dtype)};
            }));
            jobs.add(j);
            factorJobs.add(j);
            which.add(i);
        }
        runJobs("Writing", jobs);

        SafetensorsWriter w = new SafetensorsWriter();
        w.metadata(lora.metadata());
        w.metadata("resize_params", o.recipe().resizeParamsJson(o.threshold()));
        for (int k = 0; k < which.size(); k++) {
            Scoring.Layer l = layers.get(which.get(k));
            Pairing.Module m = l.module();
            int d = o.kept().get(which.get(k)).length;
            byte[][] bytes = factorJobs.get(k).result;
            long[] downShape = new long[1 + m.inputShape().length];
            downShape[0] = d;
            System.arraycopy(m.inputShape(), 0, downShape, 1, m.inputShape().length);
            long[] upShape = m.upIs4d() ? new long[] {m.out(), d, 1, 1} : new long[] {m.out(), d};
            w.add(m.name() + ".lora_down.weight", dtype, downShape, out -> out.write(bytes[1]));
            w.add(m.name() + ".lora_up.weight", dtype, upShape, out -> out.write(bytes[0]));
            double alphaFactor = lora.readScalar(m.alpha().name()) / m.rank();
            w.addFloats(m.name() + ".alpha", dtype, new long[0], new float[] {(float) (alphaFactor * d)});
            if (m.doraScale() != null) {
                w.addFloats(m.name() + ".dora_scale", dtype, m.doraScale().shape(), readFloats(lora, m.doraScale()));
            }
        }
        return w;
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
            for (int i = 0; i < len; i++) { // vectorised by C2
                h[i] = Float.floatToFloat16(v[start + i]);
            }
            MemorySegment.copy(h, 0, dst, SHORT_LE, 2L * start, len);
        }
        return b;
    }

    /** A unit of parallel work with an estimated cost (larger ones are started first). */
    private static final class Job<T> {
        final double cost;
        final Callable<T> work;
        T result;
        boolean memoryBound;

        Job(double cost, Callable<T> work) {
            this.cost = cost;
            this.work = work;
        }
    }

    /**
     * Runs jobs on the pool with a progress bar; rethrows the first failure. Order: the cheap jobs first
     * (they get the JIT compiler to the vector kernels before the expensive jobs need them), then the
     * rest largest first, memory-bound (norm) and compute-bound jobs interleaved by cumulative cost so
     * both kinds run side by side.
     */
    private void runJobs(String label, List<Job<?>> jobs) throws IOException {
        if (jobs.isEmpty()) {
            return;
        }
        List<Job<?>> order = schedule(jobs);
        try (Reporter.Progress progress = reporter.progress(label, order.size())) {
            List<Future<?>> futures = new ArrayList<>();
            for (Job<?> j : order) {
                futures.add(pool.submit(() -> {
                    run(j);
                    progress.advance(1);
                    return null;
                }));
            }
            for (Future<?> f : futures) {
                try {
                    f.get();
                } catch (ExecutionException e) {
                    for (Future<?> other : futures) {
                        other.cancel(true);
                    }
                    Throwable c = e.getCause();
                    if (c instanceof IOException io) {
                        throw io;
                    }
                    if (c instanceof RuntimeException re) {
                        throw re;
                    }
                    if (c instanceof Error err) {
                        throw err;
                    }
                    throw new IllegalStateException(c);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted", e);
                }
            }
        }
    }

    /** See {@link #runJobs}. */
    static List<Job<?>> schedule(List<Job<?>> jobs) {
        List<Job<?>> warm = new ArrayList<>();
        List<Job<?>> memory = new ArrayList<>();
        List<Job<?>> compute = new ArrayList<>();
        double total = 0;
        for (Job<?> j : jobs) {
            total += j.cost;
        }
        for (Job<?> j : jobs) {
            if (j.memoryBound) {
                memory.add(j);
            } else if (j.cost < WARM_FRACTION * total) {
                warm.add(j);
            } else {
                compute.add(j);
            }
        }
        Comparator<Job<?>> largestFirst = Comparator.comparingDouble((Job<?> j) -> j.cost).reversed();
        memory.sort(largestFirst);
        compute.sort(largestFirst);
        List<Job<?>> order = new ArrayList<>(warm);
        double memTotal = Math.max(1e-300, memory.stream().mapToDouble(j -> j.cost).sum());
        double cmpTotal = Math.max(1e-300, compute.stream().mapToDouble(j -> j.cost).sum());
        double memDone = 0;
        double cmpDone = 0;
        int mi = 0;
        int ci = 0;
        while (mi < memory.size() || ci < compute.size()) {
            boolean takeMemory = ci >= compute.size()
                    || (mi < memory.size() && memDone / memTotal <= cmpDone / cmpTotal);
            Job<?> j = takeMemory ? memory.get(mi++) : compute.get(ci++);
            if (takeMemory) {
                memDone += j.cost;
            } else {
                cmpDone += j.cost;
            }
            order.add(j);
        }
        return order;
    }

    private static <T> void run(Job<T> j) throws Exception {
        j.result = j.work.call();
    }
}
