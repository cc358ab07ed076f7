package tenmin.tools;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.core.util.Separators;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import tenmin.core.PyFormat;
import tenmin.tools.Inspect.BlockEnergy;
import tenmin.tools.Inspect.CheckpointReport;
import tenmin.tools.Inspect.Component;
import tenmin.tools.Inspect.FileHashes;
import tenmin.tools.Inspect.HashCheck;
import tenmin.tools.Inspect.LoraReport;
import tenmin.tools.Inspect.ModuleInfo;

/** Renders an {@link Inspect.Report} as text lines or as JSON (JSON-valued metadata parsed in both). */
public final class InspectText {
    private static final ObjectMapper JSON = new ObjectMapper();

    private InspectText() {
    }

    /** Pretty printer in Python's {@code json.dumps(indent=2)} style: {@code "key": value}. */
    private static DefaultPrettyPrinter printer() {
        DefaultPrettyPrinter p = new DefaultPrettyPrinter(Separators.createDefaultInstance()
                .withObjectFieldValueSpacing(Separators.Spacing.AFTER));
        p.indentArraysWith(DefaultIndenter.SYSTEM_LINEFEED_INSTANCE);
        return p;
    }

    /** The parsed value of a metadata string that holds a JSON object or array, else null. */
    static JsonNode jsonValue(String value) {
        String s = value.strip();
        if (!(s.startsWith("{") && s.endsWith("}")) && !(s.startsWith("[") && s.endsWith("]"))) {
            return null;
        }
        try {
            return JSON.readTree(s);
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    /** The report as one JSON document; JSON-valued metadata entries appear as JSON, not strings. */
    public static String json(Inspect.Report report) {
        ObjectNode root = JSON.valueToTree(report);
        root.put("kind", report instanceof LoraReport ? "lora" : "checkpoint");
        Map<String, String> metadata = report instanceof LoraReport l ? l.metadata() : ((CheckpointReport) report).metadata();
        ObjectNode meta = root.putObject("metadata");
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            JsonNode v = jsonValue(e.getValue());
            if (v != null) {
                meta.set(e.getKey(), v);
            } else {
                meta.put(e.getKey(), e.getValue());
            }
        }
        try {
            return JSON.writer(printer()).writeValueAsString(root);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The report as text lines. */
    public static List<String> text(Inspect.Report report) {
        List<String> out = new ArrayList<>();
        switch (report) {
            case LoraReport l -> lora(l, out);
            case CheckpointReport c -> checkpoint(c, out);
        }
        return out;
    }

    private static void lora(LoraReport r, List<String> out) {
        int unet = 0;
        int te = 0;
        for (ModuleInfo m : r.modules()) {
            if (m.name().startsWith("lora_te")) {
                te++;
            } else if (m.name().startsWith("lora_unet")) {
                unet++;
            }
        }
        out.add("LoRA: " + r.path());
        out.add("  " + megabytes(r.sizeBytes()) + ", " + r.tensors() + " tensors, " + r.modules().size() + " modules ("
                + unet + " UNet, " + te + " text encoder" + (r.modules().size() - unet - te > 0
                ? ", " + (r.modules().size() - unet - te) + " other" : "") + ")");
        hashes(r.hashes(), out);
        metadata(r.metadata(), out);

        out.add("");
        out.add("Modules (" + r.modules().size() + "):");
        int width = 6;
        for (ModuleInfo m : r.modules()) {
            width = Math.max(width, m.name().length());
        }
        out.add(String.format(Locale.ROOT, "  %-" + width + "s  %-14s %5s %8s %9s %5s %11s", "module", "type", "rank",
                "alpha", "alpha/r", "dtype", "|dW|_F"));
        for (ModuleInfo m : r.modules()) {
            if (m.problem() != null) {
                out.add(String.format(Locale.ROOT, "  %-" + width + "s  %-14s %s", m.name(), m.type(), m.problem()));
                continue;
            }
            out.add(String.format(Locale.ROOT, "  %-" + width + "s  %-14s %5d %8s %9s %5s %11s%s", m.name(), m.type(),
                    m.rank(), PyFormat.repr(m.alpha()), number(m.alphaOverRank()), m.dtype(), number(m.normF()),
                    m.zero() ? "  ZERO" : ""));
        }
        out.add("");
        out.add("Zero modules (no effect): " + r.zeroModules().size()
                + (r.zeroModules().isEmpty() ? "" : " — " + String.join(", ", r.zeroModules())));

        out.add("");
        out.add("Block energy (sum of |dW|_F per block; BASE = text encoders and non-block UNet modules):");
        out.add(String.format(Locale.ROOT, "  %-5s %-6s %-7s %-5s %-16s %7s %11s %7s", "chop", "name", "inspire", "lbw20",
                "block", "modules", "energy", "share"));
        for (BlockEnergy b : r.blocks()) {
            out.add(String.format(Locale.ROOT, "  %-5s %-6s %-7d %-5s %-16s %7d %11s %6.1f%%",
                    b.chopIndex() < 0 ? "" : "[" + b.chopIndex() + "]", b.chopName(), b.inspireSlot(), b.lbw20Slot(),
                    b.block(), b.modules(), number(b.energy()), 100 * b.share()));
        }
        out.add("");
        out.add("Vector strings:");
        out.add("  chop / Inspire-Pack (" + (r.blocks().size()) + " entries): " + r.chopVector());
        out.add("  A1111 lora-block-weight (20 slots): " + r.lbw20Vector());
    }

    private static void checkpoint(CheckpointReport r, List<String> out) {
        out.add("Checkpoint: " + r.path());
        out.add("  " + megabytes(r.sizeBytes()) + ", " + r.tensors() + " tensors");
        hashes(r.hashes(), out);
        metadata(r.metadata(), out);
        out.add("");
        out.add("Components:");
        out.add(String.format(Locale.ROOT, "  %-15s %-40s %7s %14s %11s  %s", "component", "prefix", "tensors", "parameters",
                "size", "dtypes"));
        for (Component c : r.components()) {
            StringBuilder dt = new StringBuilder();
            c.dtypes().forEach((k, v) -> dt.append(dt.isEmpty() ? "" : ", ").append(k).append(' ').append(v));
            out.add(String.format(Locale.ROOT, "  %-15s %-40s %7d %,14d %11s  %s", c.name(), c.prefix().isEmpty() ? "-" : c.prefix(),
                    c.tensors(), c.parameters(), megabytes(c.sizeBytes()), dt));
        }
    }

    private static void hashes(FileHashes h, List<String> out) {
        out.add("");
        if (h == null) {
            out.add("Hashes: skipped (--no-hash)");
            return;
        }
        out.add("Hashes:");
        out.add("  sha256 (file)        " + h.sha256());
        out.add("  AutoV2 (A1111)       " + h.autoV2());
        out.add("  sha256 (data only)   " + h.dataSha256() + "   (kohya sshs_model_hash, AddNet)");
        if (h.loraHash() != null) {
            out.add("  LoRA hash (A1111)    " + h.loraHash() + "   (\"Lora hashes\" in image infotext)");
        }
        if (h.legacy() != null) {
            out.add("  legacy model hash    " + h.legacy() + "   (A1111's old 8-digit hash)");
        }
        for (HashCheck c : h.checks()) {
            String verdict = c.matches() == null ? "cannot check (" + c.note() + ")"
                    : c.matches() ? "matches" : "DOES NOT MATCH (computed " + c.computed() + ")";
            out.add("  " + String.format(Locale.ROOT, "%-20s", c.key()) + " " + c.stored() + "   " + verdict);
        }
    }

    private static void metadata(Map<String, String> metadata, List<String> out) {
        out.add("");
        if (metadata.isEmpty()) {
            out.add("Metadata: none");
            return;
        }
        out.add("Metadata (" + metadata.size() + " keys):");
        for (Map.Entry<String, String> e : metadata.entrySet()) {
            JsonNode v = jsonValue(e.getValue());
            if (v == null) {
                out.add("  " + e.getKey() + ": " + e.getValue());
                continue;
            }
            out.add("  " + e.getKey() + ":");
            try {
                for (String line : JSON.writer(printer()).writeValueAsString(v).split("\n")) {
                    out.add("    " + line);
                }
            } catch (JsonProcessingException ex) {
                throw new IllegalStateException(ex);
            }
        }
    }

    private static String number(Double v) {
        return v == null ? "-" : v == 0 ? "0" : String.format(Locale.ROOT, "%.4g", v);
    }

    private static String megabytes(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }
}
