/**
 * Learning-rate schedules (transformers' formulas: constant, constant_with_warmup, linear, cosine with
 * fractional cycles, cosine_with_restarts, polynomial). Imports nothing of tenmin but {@code tenmin.core}.
 */
package tenmin.train.schedule;
