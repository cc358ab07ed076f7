package tenmin.bench;

import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.List;

import tenmin.core.Reporter;
import tenmin.formats.StDType;
import tenmin.tools.resize.Recipe;
import tenmin.tools.resize.Resize;
import tenmin.tools.resize.ResizeConfig;

/**
 * The resize benchmark repeated in one JVM, to separate the steady-state cost from JIT warm-up (not a
 * test; run by hand, inputs from {@code ./tenmin bench make-inputs bench/}):
 * <pre>
 * scripts/test -Dtest=NoSuchTest -Dsurefire.failIfNoSpecifiedTests=false   # compiles the test classes
 * . scripts/java-env.sh && "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector \
 *     -cp target/tenmin.jar:target/test-classes tenmin.bench.ResizeBench \
 *     bench/sdxl-random.safetensors bench/locon-random.safetensors /dev/shm/out 5
 * </pre>
 * Prints wall time and process CPU time (all threads, JIT compiler and GC included) of each run of
 * {@code -r fro_ckpt=1,thr=-3.55} with norms not cached.
 */
public final class ResizeBench {
    private ResizeBench() {
    }

    public static void main(String[] args) throws Exception {
        Path ckpt = Path.of(args[0]);
        Path lora = Path.of(args[1]);
        Path out = Path.of(args[2]);
        int runs = args.length > 3 ? Integer.parseInt(args[3]) : 5;
        var os = (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
        ResizeConfig config = new ResizeConfig(ckpt, List.of(lora), Recipe.parseAll("fro_ckpt=1,thr=-3.55"), out,
                StDType.F16, false, null, Runtime.getRuntime().availableProcessors());
        for (int run = 0; run < runs; run++) {
            long cpu0 = os.getProcessCpuTime();
            long t0 = System.nanoTime();
            Resize.run(config, Reporter.SILENT);
            System.out.printf("run %d: %.2f s wall, %.2f s CPU%n", run, (System.nanoTime() - t0) / 1e9,
                    (os.getProcessCpuTime() - cpu0) / 1e9);
        }
    }
}
