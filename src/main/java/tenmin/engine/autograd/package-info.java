/**
 * Reverse-mode automatic differentiation on a tape, and the functional facade model code calls.
 *
 * <p>{@link tenmin.engine.autograd.Functional} is what a UNet block is written against:
 * {@code f.linear(x, w, b)}, {@code f.conv2d(...)}, {@code f.groupNorm(...)}, {@code f.attention(...)}.
 * Each op is one package-private class ({@code Conv2dOp}, {@code AttentionOp}, ...; ops of one saved
 * input whose backward is a backend call share {@code SavedInputOp}): its static
 * {@code forward} computes the output through the {@link tenmin.engine.api.Backend} and, when a tape
 * records and an input carries gradient, saves exactly what its {@code backward} needs (listed in
 * the class comment); {@code backward} sits right below with the derivative as math and the PyTorch
 * op it matches.
 *
 * <p>Gradient rules: parameter (leaf) gradients accumulate ({@code +=} into {@link
 * tenmin.engine.api.Tensor#grad()}, for gradient accumulation); activation gradients are assigned;
 * where a tensor feeds several ops (residual and skip paths) the contributions add. Gradient
 * checkpointing ({@link tenmin.engine.autograd.Functional#checkpoint}) is a mode of a block: only its
 * inputs are kept and its forward is recomputed in backward.
 *
 * <p>Imports {@code tenmin.engine.api} and {@code tenmin.core}; never a backend package, models, lora,
 * train, tools, sample or cli.
 */
package tenmin.engine.autograd;
