package tenmin.bench;

import java.lang.management.ManagementFactory;
import java.lang.management.MemoryPoolMXBean;
import java.lang.management.MemoryType;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicLong;

import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.models.nn.RandomParams;
import tenmin.models.vae.Vae;
import tenmin.models.vae.VaeConfig;
import tenmin.models.vae.VaeKeys;

/**
 * Time and memory of the real-size SDXL VAE (random fp32 weights) on the CPU backend: encode one
 * {@code side}² image, then decode its latent (not a test; run by hand like {@link TokenizerBench}).
 * Memory: peak bytes of live tensors (weights and activations, from the backend's count) and peak
 * JVM heap in use (which adds the kernels' scratch, e.g. im2col buffers), both sampled every 10 ms.
 *
 * <pre>java ... tenmin.bench.VaeBench [side=1024] [threads=all] [convColumnBudget=2^26] [both|encode|decode]</pre>
 * ({@code decode} alone decodes a random latent.)
 */
public final class VaeBench {
    private VaeBench() {
    }

    public static void main(String[] args) throws Exception {
        int side = args.length > 0 ? Integer.parseInt(args[0]) : 1024;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : Runtime.getRuntime().availableProcessors();
        long budget = args.length > 2 ? Long.parseLong(args[2]) : Vae.DEFAULT_CONV_COLUMN_ELEMENTS;
        String mode = args.length > 3 ? args[3] : "both";
        try (CpuBackend backend = new CpuBackend(threads); Scope model = Scope.root(backend, "vae")) {
            Vae vae = new Vae(RandomParams.of(VaeKeys.PREFIX, model, DType.F32, 1), VaeConfig.SDXL);
            vae.setConvColumnBudget(budget);
            long weights = backend.liveBytes();
            System.out.printf(Locale.ROOT, "SDXL VAE, random fp32 weights %.1f MB, %d threads, image %dx%d, conv budget %d%n",
                    weights / 1e6, threads, side, side, budget);
            Tensor latent;
            if (!mode.equals("decode")) {
                Tensor image;
                try (Scope in = model.child("input")) {
                    image = in.keep(in.randUniform(Shape.of(1, 3, side, side), DType.F32, -1, 1, new Generator(7)));
                }
                Peak peak = new Peak(backend);
                long t0 = System.nanoTime();
                try (Scope step = model.child("encode")) {
                    latent = step.keep(vae.encode(step, image).sample(step, new Generator(8)));
                }
                report("encode", t0, peak.stop(), weights);
                image.close();
            } else {
                latent = model.randn(Shape.of(1, 4, side / 8, side / 8), DType.F32, new Generator(8));
            }
            if (!mode.equals("encode")) {
                Peak peak = new Peak(backend);
                long t0 = System.nanoTime();
                try (Scope step = model.child("decode")) {
                    vae.decode(step, latent);
                }
                report("decode", t0, peak.stop(), weights);
            }
        }
    }

    private static void report(String what, long startNanos, Peak.Result peak, long weights) {
        System.out.printf(Locale.ROOT, "%s: %.1f s, peak live tensors %.0f MB (%.0f MB above weights), peak heap in use %.0f MB%n",
                what, (System.nanoTime() - startNanos) / 1e9, peak.tensors() / 1e6, (peak.tensors() - weights) / 1e6,
                peak.heap() / 1e6);
    }

    /** Samples live tensor bytes and used heap every 10 ms on a daemon thread. */
    private static final class Peak {
        record Result(long tensors, long heap) {
        }

        private final AtomicLong tensors = new AtomicLong();
        private final AtomicLong heap = new AtomicLong();
        private final Thread thread;
        private volatile boolean running = true;

        Peak(CpuBackend backend) {
            thread = Thread.ofPlatform().daemon().start(() -> {
                while (running) {
                    tensors.accumulateAndGet(backend.liveBytes(), Math::max);
                    heap.accumulateAndGet(usedHeap(), Math::max);
                    try {
                        Thread.sleep(10);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }

        Result stop() throws InterruptedException {
            running = false;
            thread.join();
            return new Result(tensors.get(), heap.get());
        }

        private static long usedHeap() {
            long used = 0;
            for (MemoryPoolMXBean pool : ManagementFactory.getMemoryPoolMXBeans()) {
                if (pool.getType() == MemoryType.HEAP) {
                    used += pool.getUsage().getUsed();
                }
            }
            return used;
        }
    }
}
