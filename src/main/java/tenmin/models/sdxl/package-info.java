/**
 * The SDXL U-Net in the SAI/sgm module layout ({@link tenmin.models.sdxl.Unet}, configured by
 * {@link tenmin.models.sdxl.UnetConfig}), per-block gradient checkpointing
 * ({@link tenmin.models.sdxl.CheckpointPolicy}) and the vector conditioning y
 * ({@link tenmin.models.sdxl.SdxlConditioning}). Imports models.nn, engine, formats and core; never lora,
 * train, sample, tools or cli (LoRA networks attach through {@link tenmin.models.nn.AdaptableLayer}).
 */
package tenmin.models.sdxl;
