/**
 * The LoRA tools as library calls: {@link tenmin.tools.Chop}, {@link tenmin.tools.Blocks},
 * {@link tenmin.tools.Merge}, {@link tenmin.tools.Inspect} (and resize, atlas). Each takes a typed config
 * record and a {@link tenmin.core.Reporter}; none prints or exits. May import lora, models, engine,
 * formats and core; never cli (picocli), train or sample.
 */
package tenmin.tools;
