/**
 * Learning-rate schedules (transformers' formulas: constant, constant_with_warmup, linear, cosine with
 * fractional cycles, cosine_with_restarts, polynomial, inverse_sqrt, cosine_with_min_lr, warmup_stable_decay; and
 * diffusers' piecewise_constant with its step rules). Imports nothing of tenmin but {@code tenmin.core}.
 */
package tenmin.train.schedule;
