package tenmin.train.log;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.util.ArrayList;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import tenmin.train.TrainConfig;

class TrainLoggerTest {
    @TempDir
    Path dir;

    @Test
    void lossRecorderAveragesLikeKohya() {
        LossRecorder r = new LossRecorder();
        r.add(0, 0, 1f);
        r.add(0, 1, 3f);
        assertEquals(2.0, r.average(), 1e-12);
        r.add(1, 0, 5f); // replaces 1 -> (5 + 3) / 2
        assertEquals(4.0, r.average(), 1e-12);
        LossRecorder restored = new LossRecorder(r.window(), r.total());
        restored.add(1, 1, 1f);
        r.add(1, 1, 1f);
        assertEquals(r.average(), restored.average());
        assertEquals(3.0, r.average(), 1e-12);
    }

    @Test
    void runFolderRuleAndTags() throws IOException {
        Path logs = dir.resolve("logs");
        LocalDateTime start = LocalDateTime.of(2024, 10, 15, 13, 37, 0);
        assertEquals(logs.resolve("xl-locon20241015133700").resolve("network_train"),
                TrainLogger.runDir(logs, "xl-locon", "network_train", start));
        for (boolean reference : new boolean[] {false, true}) {
            TrainConfig.Log cfg = new TrainConfig.Log(true, logs.resolve(reference ? "r" : "f"), "xl-locon",
                    "network_train", reference);
            Path file;
            try (TrainLogger l = TrainLogger.open(cfg, start, 1729000000L, "host", () -> 1.0)) {
                l.microBatch(0, 0.5f, 0.5, 3e-4, 1e-4);
                l.epoch(0, 0.5);
                file = l.file();
            }
            List<String> tags = tags(file);
            if (reference) {
                assertEquals(List.of("loss/current", "loss/average", "lr/unet", "loss/epoch"), tags);
            } else {
                assertEquals(List.of("loss/current", "loss/average", "lr/unet", "lr/textencoder", "loss/epoch"), tags);
            }
            assertTrue(file.getParent().endsWith(Path.of("xl-locon20241015133700", "network_train")));
        }
    }

    /** Tags of the summary records, read by walking the TFRecord frames (CRCs are checked in formats' test). */
    private static List<String> tags(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        List<String> tags = new ArrayList<>();
        int p = 0;
        while (p < all.length) {
            int len = (int) ByteBuffer.wrap(all, p, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            String data = new String(all, p + 12, len, StandardCharsets.ISO_8859_1);
            int at = data.indexOf("loss/") >= 0 ? data.indexOf("loss/") : data.indexOf("lr/");
            if (at >= 0) {
                int end = at;
                while (end < data.length() && data.charAt(end) >= 0x20 && data.charAt(end) < 0x7f) {
                    end++;
                }
                tags.add(data.substring(at, end));
            }
            p += 16 + len;
        }
        return tags;
    }
}
