package tenmin.engine.backend.torch;

import java.util.function.Consumer;

import tenmin.engine.backend.torch.AtenAttention.Kernel;

/**
 * Which fused attention kernel runs on CUDA, and what replaces one that fails. A kernel asked for by name
 * ({@code CUDNN}, {@code FLASH}, {@code EFFICIENT}) is used as asked and its failure is the caller's error.
 * Under {@code AUTO}: fp32 runs the memory-efficient kernel (the only fused one with fp32); bf16/fp16 start
 * with cuDNN and, when a kernel fails (an unsupported shape, a cuDNN build without the engine it needs, a
 * library that cannot be loaded), move on to flash, then memory-efficient, for the failing call and every
 * later one: a training run keeps going on the next-fastest kernel instead of stopping, and says so once per
 * change. PyTorch's own dispatcher makes the same kind of choice, from checks before the call; this one
 * learns from the call.
 */
final class KernelChoice {
    private final Kernel requested;
    private final Consumer<String> warn;
    /** The kernel AUTO uses now for 16-bit inputs. */
    private Kernel half = Kernel.CUDNN;

    KernelChoice(Kernel requested, Consumer<String> warn) {
        this.requested = requested;
        this.warn = warn;
    }

    /** The kernel for inputs of fp32 ({@code f32}) or a 16-bit type. */
    synchronized Kernel current(boolean f32) {
        if (requested != Kernel.AUTO) {
            return requested;
        }
        return f32 ? Kernel.EFFICIENT : half;
    }

    /**
     * Records that {@code kernel} failed on inputs of that type; true when another kernel takes over (the
     * caller retries with {@link #current}), false when the failure stands (a kernel asked for by name, fp32,
     * or the last of the chain).
     */
    synchronized boolean failed(Kernel kernel, boolean f32, RuntimeException why) {
        if (requested != Kernel.AUTO || f32) {
            return false;
        }
        if (kernel != half) {
            return true; // another call already moved on; retry with the current choice
        }
        Kernel next = switch (kernel) {
            case AUTO, CUDNN -> Kernel.FLASH;
            case FLASH -> Kernel.EFFICIENT;
            case EFFICIENT -> null;
        };
        if (next == null) {
            return false;
        }
        warn.accept("tenmin: " + name(kernel) + " attention failed (" + why.getMessage() + "); using "
                + name(next) + " attention from now on");
        half = next;
        return true;
    }

    private static String name(Kernel k) {
        return switch (k) {
            case AUTO, CUDNN -> "cuDNN";
            case FLASH -> "flash";
            case EFFICIENT -> "memory-efficient";
        };
    }
}
