/**
 * LoRA/LoCon networks: kohya/LyCORIS key names ({@link tenmin.lora.SdxlKeyMap}), LoRA files seen as
 * modules ({@link tenmin.lora.LoraFile}, {@link tenmin.lora.LoraModule}), chop's block layout
 * ({@link tenmin.lora.BlockLayout}) and delta
 * arithmetic ({@link tenmin.lora.DeltaMath}); the trainable LyCORIS LoCon network
 * ({@link tenmin.lora.LoConNetwork} of {@link tenmin.lora.LoConModule}s, its module selection
 * {@link tenmin.lora.LoConPreset} and ranks {@link tenmin.lora.LoConRanks}) with its file I/O. May import models, engine, formats and core; never cli,
 * tools, train or sample.
 */
package tenmin.lora;
