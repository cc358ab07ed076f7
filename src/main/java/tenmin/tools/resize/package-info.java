/**
 * {@code resize}: shrinks a LoRA by keeping the singular directions of each layer's delta that score
 * above a threshold relative to the base checkpoint (the elias-gaeros/resize_lora tool, postprocess-spec
 * §2). Entry point {@link tenmin.tools.resize.Resize#run} with a {@link tenmin.tools.resize.ResizeConfig};
 * recipes are {@link tenmin.tools.resize.Recipe}. Library code: reports through
 * {@link tenmin.core.Reporter}, throws {@link tenmin.core.InputException} for bad input, never prints.
 * May import lora, formats and core; never cli (nor picocli), train or sample.
 */
package tenmin.tools.resize;
