/**
 * LoRA/LoCon networks: kohya/LyCORIS key names ({@link tenmin.lora.SdxlKeyMap}), the SDXL block map,
 * LoCon modules and their file I/O. May import models, engine, formats and core; never cli, tools,
 * train or sample.
 */
package tenmin.lora;
