package tenmin.bench;

import java.util.Arrays;
import java.util.Locale;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Device;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.engine.backend.torch.TorchBackend;

/**
 * Host-side cost of one torch-backend op on tiny CPU tensors (4 elements), i.e. the FFM and shim
 * overhead every op pays on top of its kernel: a generated entry point ({@code add}), a dispatcher call
 * ({@code silu}), one with optional arguments ({@code groupNorm}), and a host round trip. Not a test;
 * run by hand like {@link TokenizerBench}.
 */
public final class TorchOverheadBench {
    private TorchOverheadBench() {
    }

    private interface Op {
        void run(Scope s);
    }

    public static void main(String[] args) {
        try (TorchBackend be = TorchBackend.create(Device.CPU); Scope root = Scope.root(be, "bench")) {
            System.out.println(be.libTorch().describe());
            Tensor a = root.fromHost(new float[] {1, 2, 3, 4}, Shape.of(1, 4, 1, 1), DType.F32);
            Tensor b = root.fromHost(new float[] {1, 1, 1, 1}, Shape.of(1, 4, 1, 1), DType.F32);
            report("add (generated aoti_torch_cpu_add_Tensor)", be, root, s -> be.add(s, a, b, 1));
            report("silu (dispatcher)", be, root, s -> be.silu(s, a));
            Tensor gamma = root.fromHost(new float[] {1, 1, 1, 1}, Shape.of(4), DType.F32);
            report("groupNorm (dispatcher, optional tensors)", be, root, s -> be.groupNorm(s, a, gamma, gamma, 2, 1e-5));
            report("fromHost + toHost (4 floats)", be, root,
                    s -> s.fromHost(new float[] {1, 2, 3, 4}, Shape.of(4), DType.F32).toHost());
        }
    }

    private static void report(String what, Backend be, Scope root, Op op) {
        int n = 20_000;
        double[] rounds = new double[5];
        for (int r = 0; r < rounds.length; r++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < n; i++) {
                try (Scope s = root.child("op")) {
                    op.run(s);
                }
            }
            rounds[r] = (System.nanoTime() - t0) / 1e3 / n;
        }
        Arrays.sort(rounds);
        System.out.println(String.format(Locale.ROOT, "%-44s %6.1f us/op (median of 5 rounds of %d)", what,
                rounds[2], n));
    }
}
