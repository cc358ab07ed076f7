package tenmin.tools;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.FutureTask;
import java.util.stream.IntStream;

import tenmin.core.Reporter;
import tenmin.core.Tasks;
import tenmin.engine.blas.OpenBlas;
import tenmin.formats.Hashes;
import tenmin.formats.SafetensorsFile;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.TensorInfo;
import tenmin.lora.BlockLayout;
import tenmin.lora.DeltaMath;
import tenmin.lora.LoraFile;
import tenmin.lora.LoraModule;
import tenmin.lora.SdxlKeyMap;

/**
 * Describes a safetensors file (postprocess-spec §6.1): for a LoRA its metadata, every module (type, rank,
 * alpha, alpha/r, dtype, ‖ΔW‖_F, zero modules), the energy per block (Σ ‖ΔW‖_F in chop's layout, with
 * the Inspire-Pack and A1111 20-slot labels) and the file hashes; for a checkpoint the key, parameter and
 * dtype counts per component and the hashes. {@link InspectText} and JSON render the result.
 *
 * <p>‖ΔW‖_F comes from the exact identity ‖s·U D‖_F² = s²·Σ_ij (UᵀU)_ij (DDᵀ)_ij, never a dense ΔW.
 */
public final class Inspect {
    private Inspect() {
    }

    /** What {@link #run} reports: a {@link LoraReport} or a {@link CheckpointReport}. */
    public sealed interface Report permits LoraReport, CheckpointReport {
    }

    /**
     * File hashes. {@code sha256}: the whole file; {@code autoV2}: its first 10 hex digits (A1111/Civitai);
     * {@code dataSha256}: the data section after the header (kohya's {@code sshs_model_hash}, the AddNet
     * hash); {@code loraHash}: for LoRAs its first 12 hex digits, the hash A1111 writes under "Lora hashes";
     * {@code legacy}: for checkpoints A1111's old model hash (8 hex of 64 KiB at 1 MiB).
     * {@code checks}: stored {@code sshs_*} values compared with the computed ones.
     */
    public record FileHashes(String sha256, String autoV2, String dataSha256, String loraHash, String legacy,
                             List<HashCheck> checks) {
    }

    /**
     * A stored hash and what it should be; {@code computed} and {@code matches} are null when it cannot be
     * reproduced.
     */
    public record HashCheck(String key, String stored, String computed, Boolean matches, String note) {
        static HashCheck of(String key, String stored, String computed, String note) {
            return new HashCheck(key, stored, computed, computed == null ? null : computed.equals(stored), note);
        }
    }

    /** One module. Numeric fields are null for unsupported modules ({@code problem} says why). */
    public record ModuleInfo(String name, String type, Integer rank, Double alpha, Double alphaOverRank, String dtype,
                             Double normF, boolean zero, String block, String problem) {
    }

    /**
     * Energy of one block: {@code chopIndex} is the block's index in chop's layout (-1 for BASE = text
     * encoders and non-block UNet modules), {@code inspireSlot} its position in the Inspire-Pack vector,
     * {@code lbw20Slot} its A1111 20-slot name (the three middle blocks share {@code MID}).
     */
    public record BlockEnergy(String block, int chopIndex, String chopName, int inspireSlot, String lbw20Slot,
                              int modules, double energy, double share) {
    }

    /** Everything about a LoRA file. */
    public record LoraReport(String path, long sizeBytes, int tensors, Map<String, String> metadata,
                             List<ModuleInfo> modules, List<String> zeroModules, List<BlockEnergy> blocks,
                             String chopVector, String lbw20Vector, FileHashes hashes) implements Report {
    }

    /** Key, parameter and dtype counts of one part of a checkpoint. */
    public record Component(String name, String prefix, int tensors, long parameters, long sizeBytes,
                            Map<String, Integer> dtypes) {
    }

    /** Everything about a checkpoint (or any non-LoRA safetensors file). */
    public record CheckpointReport(String path, long sizeBytes, int tensors, Map<String, String> metadata,
                                   List<Component> components, FileHashes hashes) implements Report {
    }

    /** Inspects {@code file}; {@code hashes} false skips reading the whole file for its hashes. */
    public static Report run(Path file, boolean hashes, Reporter reporter) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            if (LoraFile.looksLikeLora(f)) {
                try (LoraFile lora = LoraFile.of(f)) {
                    return loraReport(lora, hashes, reporter);
                }
            }
            return checkpointReport(f, hashes, reporter);
        }
    }

    // ---------------------------------------------------------------- LoRA

    private static LoraReport loraReport(LoraFile lora, boolean withHashes, Reporter reporter) {
        SafetensorsFile f = lora.file();
        BlockLayout layout = BlockLayout.of(lora);
        List<ModuleInfo> modules = new ArrayList<>();
        List<String> zero = new ArrayList<>();
        double[] energy = new double[layout.blocks().size() + 1]; // [0] = BASE
        int[] count = new int[energy.length];
        // the file hashes on a thread of their own while the modules' norms are computed (in parallel too)
        FutureTask<FileHashes> hashing = new FutureTask<>(() -> hashes(f, true, Reporter.SILENT));
        if (withHashes) {
            Thread.ofPlatform().daemon().name("inspect-sha256").start(hashing);
        }
        List<LoraModule> all = lora.modules();
        ModuleInfo[] infos = new ModuleInfo[all.size()];
        try (Reporter.Progress progress = reporter.progress("norms", all.size())) {
            IntStream.range(0, all.size()).parallel().forEach(i -> {
                infos[i] = moduleInfo(all.get(i), f);
                progress.advance(1);
            });
        }
        for (int i = 0; i < all.size(); i++) {
            LoraModule m = all.get(i);
            ModuleInfo info = infos[i];
            modules.add(info);
            if (info.zero()) {
                zero.add(m.name());
            }
            int slot = layout.indexOfModule(m.name()) + 1;
            count[slot]++;
            if (info.normF() != null) {
                energy[slot] += info.normF();
            }
        }
        double total = 0;
        for (double e : energy) {
            total += e;
        }
        List<BlockEnergy> blocks = new ArrayList<>();
        blocks.add(new BlockEnergy("BASE", -1, "BASE", 0, "BASE", count[0], energy[0], share(energy[0], total)));
        for (int i = 0; i < layout.blocks().size(); i++) {
            BlockLayout.Block b = layout.blocks().get(i);
            blocks.add(new BlockEnergy(b.label(), i, b.shortName(), i + 1, lbw20Slot(b), count[i + 1], energy[i + 1],
                    share(energy[i + 1], total)));
        }
        FileHashes hashes = withHashes ? Tasks.await(hashing, "hashing " + f.path()) : null;
        return new LoraReport(f.path().toString(), f.fileSegment().byteSize(), f.size(), f.metadata(), modules, zero,
                blocks, layout.vectorString(), lbw20Vector(), hashes);
    }

    private static double share(double e, double total) {
        return total > 0 ? e / total : 0;
    }

    private static String lbw20Slot(BlockLayout.Block b) {
        if (b.section().startsWith("middle")) {
            return "MID";
        }
        return (b.section().startsWith("input") ? "IN" : "OUT") + String.format("%02d", b.index());
    }

    private static String lbw20Vector() {
        StringBuilder sb = new StringBuilder("BASE");
        for (int i = 0; i <= 8; i++) {
            sb.append(",IN0").append(i);
        }
        sb.append(",MID");
        for (int i = 0; i <= 8; i++) {
            sb.append(",OUT0").append(i);
        }
        return sb.toString();
    }

    private static ModuleInfo moduleInfo(LoraModule m, SafetensorsFile f) {
        if (!m.isSupported()) {
            return new ModuleInfo(m.name(), m.typeLabel(), null, null, null, null, null, false, m.block(), m.problem());
        }
        double alpha = m.alpha();
        float[] up = m.readUp();
        float[] down = m.readDown();
        double norm = DeltaMath.frobeniusNorm(OpenBlas.find().blas(), up, down, (int) m.outFeatures(), m.rank(),
                m.columns(), m.scale());
        f.release(m.upKey()); // keep resident memory small on big files
        f.release(m.downKey());
        boolean zero = norm == 0 || alpha == 0;
        return new ModuleInfo(m.name(), m.typeLabel(), m.rank(), alpha, m.scale(), m.dtype().name(), norm, zero,
                m.block(), null);
    }

    // ---------------------------------------------------------------- checkpoint

    private static final String[][] COMPONENTS = {
            {"UNet", SdxlKeyMap.UNET_PREFIX},
            {"text encoder 1", SdxlKeyMap.TE1_PREFIX},
            {"text encoder 2", SdxlKeyMap.TE2_PREFIX},
            {"VAE", SdxlKeyMap.VAE_PREFIX},
    };

    private static CheckpointReport checkpointReport(SafetensorsFile f, boolean withHashes, Reporter reporter) {
        Map<String, Component> parts = new LinkedHashMap<>();
        Map<String, int[]> counts = new LinkedHashMap<>();
        Map<String, long[]> sizes = new LinkedHashMap<>();
        Map<String, Map<String, Integer>> dtypes = new LinkedHashMap<>();
        Map<String, String> prefixes = new LinkedHashMap<>();
        for (String[] c : COMPONENTS) {
            prefixes.put(c[0], c[1]);
        }
        prefixes.put("other", "");
        for (String name : prefixes.keySet()) {
            counts.put(name, new int[1]);
            sizes.put(name, new long[2]);
            dtypes.put(name, new TreeMap<>());
        }
        for (String key : f.names()) {
            String part = "other";
            for (String[] c : COMPONENTS) {
                if (key.startsWith(c[1])) {
                    part = c[0];
                    break;
                }
            }
            TensorInfo t = f.info(key);
            counts.get(part)[0]++;
            sizes.get(part)[0] += t.numel();
            sizes.get(part)[1] += t.sizeBytes();
            dtypes.get(part).merge(t.dtype().name(), 1, Integer::sum);
        }
        for (String name : prefixes.keySet()) {
            if (counts.get(name)[0] > 0) {
                parts.put(name, new Component(name, prefixes.get(name), counts.get(name)[0], sizes.get(name)[0],
                        sizes.get(name)[1], dtypes.get(name)));
            }
        }
        FileHashes hashes = withHashes ? hashes(f, false, reporter) : null;
        return new CheckpointReport(f.path().toString(), f.fileSegment().byteSize(), f.size(), f.metadata(),
                List.copyOf(parts.values()), hashes);
    }

    // ---------------------------------------------------------------- hashes

    private static final long HASH_CHUNK = 64L << 20;

    /**
     * SHA-256 of the whole file and of its data section in one pass (the two digests on two cores, chunk by chunk),
     * releasing pages as it goes.
     */
    private static FileHashes hashes(SafetensorsFile f, boolean lora, Reporter reporter) {
        MemorySegment all = f.fileSegment();
        MessageDigest whole = Hashes.sha256();
        MessageDigest data = Hashes.sha256();
        long start = f.dataStart();
        try (Reporter.Progress progress = reporter.progress("sha256", all.byteSize())) {
            for (long off = 0; off < all.byteSize(); off += HASH_CHUNK) {
                long len = Math.min(HASH_CHUNK, all.byteSize() - off);
                MemorySegment chunk = all.asSlice(off, len);
                CompletableFuture<Void> dataPart = null;
                if (off + len > start) { // the data section's digest on a second core, over the same chunk
                    long from = Math.max(off, start);
                    MemorySegment slice = all.asSlice(from, off + len - from);
                    dataPart = CompletableFuture.runAsync(() -> Hashes.update(data, slice));
                }
                Hashes.update(whole, chunk);
                if (dataPart != null) {
                    Tasks.await(dataPart, "hashing " + f.path());
                }
                if (chunk.isMapped()) {
                    chunk.unload();
                }
                progress.advance(len);
            }
        }
        String sha = HexFormat.of().formatHex(whole.digest());
        String dataSha = HexFormat.of().formatHex(data.digest());
        List<HashCheck> checks = new ArrayList<>();
        String stored = f.metadata().get("sshs_model_hash");
        if (stored != null && stored.startsWith("0x")) {
            // LyCORIS (and tenmin train) hash each tensor in the trainer's state-dict order, which the file
            // (sorted by dtype and name) does not record: report it, don't call it a mismatch.
            checks.add(new HashCheck("sshs_model_hash", stored, null, null,
                    "LyCORIS rule (sha256 over tensors in the trainer's state-dict order); not verifiable from the file"));
        } else if (stored != null) {
            checks.add(HashCheck.of("sshs_model_hash", stored, dataSha, "sha256 of the data section"));
        }
        stored = f.metadata().get("sshs_legacy_hash");
        if (stored != null) {
            String legacy = kohyaLegacyHash(f);
            checks.add(HashCheck.of("sshs_legacy_hash", stored, legacy, legacy == null
                    ? "not reproducible: the ss_* metadata reaches past 1 MiB, where the reference's random key order matters"
                    : "8 hex of 64 KiB at 1 MiB of the file as saved with only its ss_* metadata"));
        }
        String legacy = lora ? null : Hashes.legacyHash(all);
        return new FileHashes(sha, sha.substring(0, 10), dataSha, lora ? dataSha.substring(0, 12) : null, legacy, checks);
    }

    /**
     * kohya's {@code sshs_legacy_hash}: computed on the file as the reference writer would serialise it
     * with only the {@code ss_*} metadata keys, i.e. 8 hex digits of the SHA-256 of bytes
     * {@code [0x100000, 0x110000)} of {@code len(N) + header' + data}. The header's length does not
     * depend on key order; when the slice reaches into the header the value cannot be reproduced (null).
     */
    static String kohyaLegacyHash(SafetensorsFile f) {
        SafetensorsWriter w = new SafetensorsWriter();
        for (Map.Entry<String, String> e : f.metadata().entrySet()) {
            if (e.getKey().startsWith("ss_")) {
                w.metadata(e.getKey(), e.getValue());
            }
        }
        for (TensorInfo t : f.tensorsInFileOrder()) {
            w.add(t.name(), t.dtype(), t.shape(), out -> {
            });
        }
        long headerBytes = w.headerJson().getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
        long padded = (headerBytes + 7) / 8 * 8;
        long dataStart = 8 + padded;
        if (dataStart > 0x100000) {
            return null;
        }
        MemorySegment dataSection = f.fileSegment().asSlice(f.dataStart());
        long from = Math.min(0x100000L - dataStart, dataSection.byteSize());
        long to = Math.min(0x110000L - dataStart, dataSection.byteSize());
        return Hashes.sha256Hex(dataSection.asSlice(from, to - from)).substring(0, 8);
    }
}
