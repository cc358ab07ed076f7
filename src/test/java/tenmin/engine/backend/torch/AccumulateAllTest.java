package tenmin.engine.backend.torch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

import tenmin.engine.api.Backend;
import tenmin.engine.api.DType;
import tenmin.engine.api.Generator;
import tenmin.engine.api.OpStats;
import tenmin.engine.api.Scope;
import tenmin.engine.api.Shape;
import tenmin.engine.api.Tensor;
import tenmin.testing.TorchBackendTests;

/**
 * {@link Backend#axpyIntoAll} on the torch backend (runs of targets packed back to back in one arena are added with
 * three ops) against {@link Backend#axpyInto} pair by pair: the same fp32 sums bit for bit, for bf16 and fp32
 * sources, targets in any order, with gaps, short runs and a target named twice.
 */
@Tag("torch")
class AccumulateAllTest extends TorchBackendTests {
    private static final Shape[] SHAPES = {Shape.of(3, 4), Shape.of(5), Shape.of(2, 3, 1, 1), Shape.of(7), Shape.of(4, 2),
        Shape.of(6), Shape.of(1), Shape.of(3, 3)};

    /** Gradients relocated into one arena: the first five back to back, a gap, then the rest back to back. */
    private static List<Tensor> packed(Scope s, Generator gen) {
        long total = 0;
        for (Shape sh : SHAPES) {
            total += sh.numel();
        }
        Tensor arena = s.zeros(Shape.of((int) total + 10), DType.F32);
        List<Tensor> ys = new ArrayList<>();
        long offset = 0;
        for (int i = 0; i < SHAPES.length; i++) {
            Tensor y = s.randn(SHAPES[i], DType.F32, gen);
            torch.relocate(y, arena, offset);
            ys.add(y);
            offset += SHAPES[i].numel() + (i == 4 ? 10 : 0);
        }
        return ys;
    }

    private static List<float[]> sums(DType sourceType, boolean fused, int[] pairs) {
        OpStats stats = new OpStats();
        try (Scope s = Scope.root(fused ? torch : stats.wrap(torch), "accumulate")) {
            Generator gen = new Generator(5);
            List<Tensor> ys = packed(s, gen);
            List<Tensor> targets = new ArrayList<>();
            List<Tensor> sources = new ArrayList<>();
            for (int i : pairs) {
                targets.add(ys.get(i));
                sources.add(s.randn(ys.get(i).shape(), sourceType, gen));
            }
            if (fused) {
                torch.axpyIntoAll(targets, sources);
            } else {
                for (int i = 0; i < targets.size(); i++) {
                    s.backend().axpyInto(targets.get(i), 1.0, sources.get(i));
                }
            }
            List<float[]> out = new ArrayList<>();
            for (Tensor y : ys) {
                out.add(y.toHost());
            }
            return out;
        }
    }

    private static void assertSame(DType sourceType, int... pairs) {
        List<float[]> fused = sums(sourceType, true, pairs);
        List<float[]> oneByOne = sums(sourceType, false, pairs);
        for (int i = 0; i < fused.size(); i++) {
            assertArrayEquals(oneByOne.get(i), fused.get(i), sourceType + " target " + i);
        }
    }

    @Test
    void packedTargetsGetThePairwiseSums() {
        assertSame(DType.BF16, 3, 0, 2, 1, 4, 7, 5, 6);      // every target, out of order: a run of 5, a run of 3
        assertSame(DType.F32, 0, 1, 2, 3, 4, 5, 6, 7);
        assertSame(DType.BF16, 0, 1, 3, 4, 5, 6, 7);         // a hole: runs of 2 (pairwise), 2 and 3
        assertSame(DType.BF16, 0, 1, 2, 3, 0, 5);            // a target twice: pair by pair, in order
        assertSame(DType.BF16, 5, 0, 1, 2, 3, 4, 5, 6, 7, 5); // one target three times, a run of 4 fused beside it
    }

    @Test
    void badListsAreRefused() {
        try (Scope s = Scope.root(torch, "bad")) {
            Tensor y = s.zeros(Shape.of(4), DType.F32);
            Tensor x = s.zeros(Shape.of(5), DType.F32);
            assertThrows(IllegalArgumentException.class, () -> torch.axpyIntoAll(List.of(y), List.of()));
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> torch.axpyIntoAll(List.of(y, y, y, y), List.of(x, x, x, x)));
            assertEquals(true, e.getMessage().contains("axpyIntoAll"), e.getMessage());
        }
    }
}
