package tenmin.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import java.util.zip.CRC32;
import java.util.zip.Deflater;

import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.metadata.IIOMetadata;
import javax.imageio.stream.ImageInputStream;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.NamedNodeMap;
import org.w3c.dom.Node;

import tenmin.core.InputException;

class PngFileTest {

    private static RgbImage noiseImage(int w, int h, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        byte[] rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                int i = 3 * (y * w + x);
                // smooth gradients plus noise: every filter type gets picked somewhere
                rgb[i] = (byte) (x * 255 / Math.max(1, w - 1));
                rgb[i + 1] = (byte) (y * 255 / Math.max(1, h - 1));
                rgb[i + 2] = (byte) (x < w / 2 ? r.nextInt(256) : (x + y) & 0xFF);
            }
        }
        return RgbImage.of(w, h, rgb);
    }

    private static Map<String, String> sampleText() {
        Map<String, String> t = new LinkedHashMap<>();
        t.put("parameters", "a cat, (detailed:1.2)\nNegative prompt: blurry\nSteps: 30, Sampler: Euler a");
        t.put("Comment", "Latin-1 only: café, Zürich, ±½");
        t.put("prompt", "日本語のテキスト “quotes” 😀");
        return t;
    }

    /** The chunk types of a PNG, read by hand. */
    private static List<String> chunkTypes(byte[] png) {
        List<String> types = new ArrayList<>();
        ByteBuffer b = ByteBuffer.wrap(png, 8, png.length - 8);
        while (b.remaining() >= 12) {
            int len = b.getInt();
            byte[] t = new byte[4];
            b.get(t);
            types.add(new String(t, StandardCharsets.US_ASCII));
            b.position(b.position() + len + 4);
        }
        return types;
    }

    /** The data of the first chunk of a type, read by hand. */
    private static byte[] chunkData(byte[] png, String type) {
        ByteBuffer b = ByteBuffer.wrap(png, 8, png.length - 8);
        while (b.remaining() >= 12) {
            int len = b.getInt();
            byte[] t = new byte[4];
            b.get(t);
            byte[] data = new byte[len];
            b.get(data);
            b.getInt();
            if (new String(t, StandardCharsets.US_ASCII).equals(type)) {
                return data;
            }
        }
        return null;
    }

    @Test
    void writesAPngThatImageIoDecodesToTheSamePixels(@TempDir Path dir) throws IOException {
        // 700x600: three bands compressed apart (512 KiB of filtered rows each) joined into one zlib stream
        for (int[] size : new int[][] {{1, 1}, {7, 3}, {300, 200}, {700, 600}}) {
            RgbImage img = noiseImage(size[0], size[1], 42);
            Path file = dir.resolve("img-" + size[0] + ".png");
            PngFile.write(file, img, sampleText());
            BufferedImage decoded = ImageIO.read(file.toFile());
            assertNotNull(decoded, "ImageIO could not read the file");
            assertEquals(size[0], decoded.getWidth());
            assertEquals(size[1], decoded.getHeight());
            for (int y = 0; y < size[1]; y++) {
                for (int x = 0; x < size[0]; x++) {
                    assertEquals(img.rgb(x, y), decoded.getRGB(x, y) & 0xFFFFFF, "pixel " + x + "," + y);
                }
            }
            assertEquals(img, RgbImage.from(decoded));
        }
    }

    /** The bands are compressed on all cores; the bytes are the same in one thread (they depend on no machine). */
    @Test
    void bytesDoNotDependOnTheNumberOfThreads() throws Exception {
        RgbImage img = noiseImage(900, 500, 7);
        byte[] all = PngFile.encode(img, sampleText());
        java.util.concurrent.ForkJoinPool one = new java.util.concurrent.ForkJoinPool(1);
        try {
            byte[] single = one.submit(() -> PngFile.encode(img, sampleText())).get();
            org.junit.jupiter.api.Assertions.assertArrayEquals(all, single);
        } finally {
            one.shutdown();
        }
        assertEquals(img, RgbImage.from(ImageIO.read(new ByteArrayInputStream(all))));
    }

    @Test
    void textChunksReadBackInOrder(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("a.png");
        PngFile.write(file, noiseImage(16, 16, 1), sampleText());
        Map<String, String> back = PngFile.readText(file);
        assertEquals(sampleText(), back);
        assertEquals(List.copyOf(sampleText().keySet()), List.copyOf(back.keySet()));
    }

    @Test
    void latinOneTextIsTextChunkOtherTextIsInternationalAsPillowDoes(@TempDir Path dir) throws IOException {
        byte[] png = PngFile.encode(noiseImage(4, 4, 2), sampleText());
        List<String> types = chunkTypes(png);
        assertEquals(List.of("IHDR", "tEXt", "tEXt", "iTXt", "IDAT", "IEND"), types);
        // tEXt: keyword NUL Latin-1 text
        assertArrayEquals(("parameters\0" + sampleText().get("parameters")).getBytes(StandardCharsets.ISO_8859_1),
                chunkData(png, "tEXt"));
        // iTXt: keyword NUL, compression flag 0, method 0, empty language NUL, empty translated keyword NUL, UTF-8
        byte[] itxt = chunkData(png, "iTXt");
        byte[] head = "prompt\0\0\0\0\0".getBytes(StandardCharsets.ISO_8859_1);
        assertArrayEquals(head, Arrays.copyOf(itxt, head.length));
        assertEquals(sampleText().get("prompt"),
                new String(itxt, head.length, itxt.length - head.length, StandardCharsets.UTF_8));
        // the signature and IHDR (8-bit RGB) by the spec
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'}, Arrays.copyOf(png, 8));
        byte[] ihdr = chunkData(png, "IHDR");
        assertArrayEquals(new byte[] {0, 0, 0, 4, 0, 0, 0, 4, 8, 2, 0, 0, 0}, ihdr);
    }

    @Test
    void imageIoSeesTheTextChunks(@TempDir Path dir) throws IOException {
        byte[] png = PngFile.encode(noiseImage(8, 8, 3), sampleText());
        Map<String, String> seen = new LinkedHashMap<>();
        try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(png))) {
            ImageReader reader = ImageIO.getImageReaders(in).next();
            reader.setInput(in);
            IIOMetadata meta = reader.getImageMetadata(0);
            Node root = meta.getAsTree("javax_imageio_png_1.0");
            for (Node n = root.getFirstChild(); n != null; n = n.getNextSibling()) {
                for (Node e = n.getFirstChild(); e != null; e = e.getNextSibling()) {
                    NamedNodeMap a = e.getAttributes();
                    if (e.getNodeName().equals("tEXtEntry")) {
                        seen.put(a.getNamedItem("keyword").getNodeValue(), a.getNamedItem("value").getNodeValue());
                    } else if (e.getNodeName().equals("iTXtEntry")) {
                        assertEquals("FALSE", a.getNamedItem("compressionFlag").getNodeValue());
                        seen.put(a.getNamedItem("keyword").getNodeValue(), a.getNamedItem("text").getNodeValue());
                    }
                }
            }
            reader.dispose();
        }
        assertEquals(sampleText(), seen);
    }

    @Test
    void readsCompressedTextWrittenByOthers() throws IOException {
        // a PNG with a zTXt and a compressed iTXt chunk, assembled here by hand
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'});
        rawChunk(out, "IHDR", new byte[] {0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0});
        ByteArrayOutputStream z = new ByteArrayOutputStream();
        z.write("parameters\0\0".getBytes(StandardCharsets.ISO_8859_1));
        z.write(deflate("zipped settings, ©".getBytes(StandardCharsets.ISO_8859_1)));
        rawChunk(out, "zTXt", z.toByteArray());
        ByteArrayOutputStream i = new ByteArrayOutputStream();
        i.write("workflow\0\1\0en\0\0".getBytes(StandardCharsets.ISO_8859_1));
        i.write(deflate("{\"ノード\": 1}".getBytes(StandardCharsets.UTF_8)));
        rawChunk(out, "iTXt", i.toByteArray());
        rawChunk(out, "IDAT", deflate(new byte[] {0, 1, 2, 3}));
        rawChunk(out, "IEND", new byte[0]);
        Map<String, String> text = PngFile.readText(out.toByteArray(), "hand.png");
        assertEquals(Map.of("parameters", "zipped settings, ©", "workflow", "{\"ノード\": 1}"), text);
    }

    private static byte[] deflate(byte[] data) {
        Deflater d = new Deflater();
        d.setInput(data);
        d.finish();
        byte[] buf = new byte[data.length + 64];
        int n = d.deflate(buf);
        d.end();
        return Arrays.copyOf(buf, n);
    }

    private static void rawChunk(ByteArrayOutputStream out, String type, byte[] data) throws IOException {
        DataOutputStream d = new DataOutputStream(out);
        d.writeInt(data.length);
        d.write(type.getBytes(StandardCharsets.US_ASCII));
        d.write(data);
        CRC32 crc = new CRC32();
        crc.update(type.getBytes(StandardCharsets.US_ASCII));
        crc.update(data);
        d.writeInt((int) crc.getValue());
    }

    @Test
    void badFilesGiveOneLineErrorsNamingTheFile(@TempDir Path dir) throws IOException {
        Path notPng = dir.resolve("x.png");
        Files.writeString(notPng, "GIF89a....");
        InputException e = assertThrows(InputException.class, () -> PngFile.readText(notPng));
        assertTrue(e.getMessage().startsWith(notPng.toString()), e.getMessage());

        byte[] good = PngFile.encode(noiseImage(8, 8, 4), sampleText());
        Path truncated = dir.resolve("t.png");
        Files.write(truncated, Arrays.copyOf(good, good.length - 20));
        assertThrows(InputException.class, () -> PngFile.readText(truncated));

        byte[] corrupt = good.clone();
        corrupt[45] ^= 0x55; // inside the first tEXt chunk
        Path bad = dir.resolve("c.png");
        Files.write(bad, corrupt);
        InputException crc = assertThrows(InputException.class, () -> PngFile.readText(bad));
        assertTrue(crc.getMessage().contains("CRC"), crc.getMessage());

        assertThrows(InputException.class, () -> PngFile.readText(dir.resolve("missing.png")));
    }

    @Test
    void writeIsAtomicAndLeavesNothingOnFailure(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("out.png");
        Files.writeString(file, "old content");
        // an invalid keyword fails before anything is written: the old file stays
        Map<String, String> badKey = Map.of("", "x");
        assertThrows(IllegalArgumentException.class, () -> PngFile.write(file, noiseImage(2, 2, 5), badKey));
        assertEquals("old content", Files.readString(file));
        // a missing folder is an input error and leaves no file
        Path missing = dir.resolve("no/such/dir/out.png");
        assertThrows(InputException.class, () -> PngFile.write(missing, noiseImage(2, 2, 5), Map.of()));
        assertFalse(Files.exists(missing));
        // success replaces the file and leaves no temporary behind
        PngFile.write(file, noiseImage(2, 2, 5), Map.of("parameters", "p"));
        assertEquals(Map.of("parameters", "p"), PngFile.readText(file));
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(file), s.toList());
        }
    }

    @Test
    void compressesSmoothImagesWell() {
        RgbImage flat = RgbImage.filled(512, 512, 0x336699);
        byte[] png = PngFile.encode(flat, Map.of());
        assertTrue(png.length < 4096, "a flat 512x512 image took " + png.length + " bytes");
    }
}
