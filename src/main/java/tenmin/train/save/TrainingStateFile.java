package tenmin.train.save;

import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import tenmin.core.InputException;
import tenmin.formats.AtomicFile;
import tenmin.formats.Hashes;
import tenmin.formats.SafetensorsWriter;
import tenmin.formats.StDType;
import tenmin.train.optim.OptimizerState;

/**
 * The training-state file ({@code <lora stem>.tenmin-state}, written next to every LoRA save):
 * <pre>
 * bytes 0..7    magic "TMSTATE\0"
 * int32 LE      format version ({@link #VERSION})
 * int32 LE      0 (reserved)
 * int64 LE      header length N
 * N bytes       UTF-8 JSON: position, seed, generator states, info, optimizer type and step counters,
 *               and the tensor table [{"name", "shape", "offset", "count"}] (offsets from the data start)
 * padding       spaces to a multiple of 8
 * data          fp32 little-endian tensors in table order: "lora/&lt;key&gt;", "optim/&lt;param&gt;/&lt;slot&gt;",
 *               "loss/record"
 * </pre>
 * Written atomically; read with full validation (magic, version, sizes), errors naming the file.
 */
public final class TrainingStateFile {
    /** The first 8 bytes. */
    static final byte[] MAGIC = {'T', 'M', 'S', 'T', 'A', 'T', 'E', 0};
    /** The format version this code writes and reads. */
    public static final int VERSION = 1;
    private static final ObjectMapper JSON = new ObjectMapper();

    private TrainingStateFile() {
    }

    /** SHA-256 (hex, first 16 digits) of the config's flag values, to detect a changed recipe on resume. */
    public static String configDigest(Map<String, Object> flags) {
        StringBuilder sb = new StringBuilder();
        for (Map.Entry<String, Object> e : new java.util.TreeMap<>(flags).entrySet()) {
            sb.append(e.getKey()).append('=').append(e.getValue()).append('\n');
        }
        return HexFormat.of().formatHex(Hashes.sha256().digest(sb.toString().getBytes(StandardCharsets.UTF_8)))
                .substring(0, 16);
    }

    public static void write(Path target, TrainingState s) throws IOException {
        List<String> names = new ArrayList<>();
        List<long[]> shapes = new ArrayList<>();
        List<float[]> data = new ArrayList<>();
        for (StateTensor t : s.lora()) {
            names.add("lora/" + t.name());
            shapes.add(t.shape());
            data.add(t.values());
        }
        for (Map.Entry<String, float[]> e : s.optimizer().tensors().entrySet()) {
            names.add("optim/" + e.getKey());
            shapes.add(new long[] {e.getValue().length});
            data.add(e.getValue());
        }
        names.add("loss/record");
        shapes.add(new long[] {s.lossRecord().length});
        data.add(s.lossRecord());

        ObjectNode h = JSON.createObjectNode();
        h.put("format", "tenmin training state");
        h.put("global_step", s.globalStep());
        h.put("epoch", s.epoch());
        h.put("batch_in_epoch", s.batchInEpoch());
        h.put("seed", s.seed());
        h.put("config_digest", s.configDigest());
        h.put("loss_total", s.lossTotal());
        ObjectNode rng = h.putObject("rng");
        for (Map.Entry<String, long[]> e : s.rng().entrySet()) {
            ArrayNode a = rng.putArray(e.getKey());
            for (long v : e.getValue()) {
                a.add(v);
            }
        }
        ObjectNode info = h.putObject("info");
        s.info().forEach(info::put);
        h.put("optimizer_type", s.optimizer().type());
        ObjectNode steps = h.putObject("optimizer_steps");
        s.optimizer().steps().forEach(steps::put);
        ArrayNode table = h.putArray("tensors");
        long offset = 0;
        for (int i = 0; i < names.size(); i++) {
            ObjectNode t = table.addObject();
            t.put("name", names.get(i));
            ArrayNode shape = t.putArray("shape");
            for (long d : shapes.get(i)) {
                shape.add(d);
            }
            t.put("offset", offset);
            t.put("count", data.get(i).length);
            offset += 4L * data.get(i).length;
        }
        h.put("data_bytes", offset);
        byte[] header = JSON.writeValueAsBytes(h);
        int pad = (8 - (24 + header.length) % 8) % 8;
        AtomicFile.write(target, raw -> {
            DataOutputStream out = new DataOutputStream(raw);
            out.write(MAGIC);
            ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
            b.putInt(VERSION).putInt(0).putLong(header.length + pad);
            out.write(b.array());
            out.write(header);
            for (int i = 0; i < pad; i++) {
                out.write(' ');
            }
            for (float[] d : data) {
                SafetensorsWriter.writeFloats(out, d, StDType.F32);
            }
            out.flush();
        });
    }

    public static TrainingState read(Path file) {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            ByteBuffer head = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
            readFully(ch, head, 0, file);
            byte[] magic = new byte[8];
            head.get(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) {
                throw new InputException(file + ": not a tenmin training-state file (bad magic)");
            }
            int version = head.getInt();
            head.getInt();
            if (version != VERSION) {
                throw new InputException(file + ": training-state format version " + version + ", this tenmin reads "
                        + VERSION + "; resume with the tenmin that wrote it or start the run again");
            }
            long headerLen = head.getLong();
            if (headerLen < 2 || 24 + headerLen > size || headerLen > 1L << 30) {
                throw new InputException(file + ": truncated or corrupt header (length " + headerLen + ")");
            }
            ByteBuffer hb = ByteBuffer.allocate((int) headerLen);
            readFully(ch, hb, 24, file);
            JsonNode h = JSON.readTree(new String(hb.array(), StandardCharsets.UTF_8).strip());
            long dataStart = 24 + headerLen;
            long dataBytes = h.path("data_bytes").asLong(-1);
            if (dataBytes < 0 || dataStart + dataBytes != size) {
                throw new InputException(file + ": size " + size + " does not match its header (expected "
                        + (dataStart + dataBytes) + " bytes); the file is truncated or corrupt");
            }
            Map<String, long[]> shapes = new LinkedHashMap<>();
            Map<String, float[]> tensors = new LinkedHashMap<>();
            for (JsonNode t : h.get("tensors")) {
                String name = t.get("name").asText();
                long count = t.get("count").asLong();
                long offset = t.get("offset").asLong();
                if (count < 0 || count > Integer.MAX_VALUE - 8 || offset < 0 || offset + 4 * count > dataBytes) {
                    throw new InputException(file + ": tensor " + name + " lies outside the data section");
                }
                long[] shape = new long[t.get("shape").size()];
                for (int i = 0; i < shape.length; i++) {
                    shape[i] = t.get("shape").get(i).asLong();
                }
                float[] v = new float[(int) count];
                ByteBuffer bb = ByteBuffer.allocate(4 * (int) count).order(ByteOrder.LITTLE_ENDIAN);
                readFully(ch, bb, dataStart + offset, file);
                bb.asFloatBuffer().get(v);
                shapes.put(name, shape);
                tensors.put(name, v);
            }
            List<StateTensor> lora = new ArrayList<>();
            Map<String, float[]> optim = new LinkedHashMap<>();
            float[] loss = new float[0];
            for (Map.Entry<String, float[]> e : tensors.entrySet()) {
                String n = e.getKey();
                if (n.startsWith("lora/")) {
                    lora.add(new StateTensor(n.substring(5), shapes.get(n), e.getValue()));
                } else if (n.startsWith("optim/")) {
                    optim.put(n.substring(6), e.getValue());
                } else if (n.equals("loss/record")) {
                    loss = e.getValue();
                } else {
                    throw new InputException(file + ": unknown tensor " + n);
                }
            }
            Map<String, Long> steps = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = h.get("optimizer_steps").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                steps.put(e.getKey(), e.getValue().asLong());
            }
            Map<String, long[]> rng = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = h.get("rng").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                long[] st = new long[e.getValue().size()];
                for (int i = 0; i < st.length; i++) {
                    st[i] = e.getValue().get(i).asLong();
                }
                rng.put(e.getKey(), st);
            }
            Map<String, String> info = new LinkedHashMap<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = h.get("info").fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                info.put(e.getKey(), e.getValue().asText());
            }
            return new TrainingState(h.get("global_step").asLong(), h.get("epoch").asInt(), h.get("batch_in_epoch").asInt(),
                    h.get("seed").asLong(), h.get("config_digest").asText(), rng, info, lora,
                    new OptimizerState(h.get("optimizer_type").asText(), steps, optim), loss,
                    h.get("loss_total").asDouble());
        } catch (java.nio.file.NoSuchFileException e) {
            throw new InputException(file + ": training state not found");
        } catch (IOException | NullPointerException | IllegalArgumentException e) {
            if (e instanceof InputException ie) {
                throw ie;
            }
            throw new InputException(file + ": corrupt training-state file: " + e.getMessage(), e);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer b, long pos, Path file) throws IOException {
        long p = pos;
        while (b.hasRemaining()) {
            int n = ch.read(b, p);
            if (n < 0) {
                throw new InputException(file + ": truncated training-state file");
            }
            p += n;
        }
        b.flip();
    }

    /** True when {@code file} starts with the state magic (to tell a state file from a LoRA). */
    public static boolean looksLikeState(Path file) {
        try (var in = Files.newInputStream(file)) {
            return java.util.Arrays.equals(in.readNBytes(8), MAGIC);
        } catch (IOException e) {
            return false;
        }
    }
}
