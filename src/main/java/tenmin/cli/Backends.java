package tenmin.cli;

import tenmin.core.InputException;
import tenmin.core.Reporter;
import tenmin.engine.api.Backend;
import tenmin.engine.api.Device;
import tenmin.engine.backend.cpu.CpuBackend;
import tenmin.engine.backend.torch.LibTorch;
import tenmin.engine.backend.torch.LibTorchLocator;
import tenmin.engine.backend.torch.TorchBackend;
import tenmin.engine.backend.torch.TorchException;

/** The compute backend a command's {@code --device} names, one rule for every command. */
final class Backends {
    private Backends() {
    }

    /**
     * {@code cpu} is the pure-Java backend; {@code cuda[:N]} the libtorch backend on that GPU; {@code device}
     * null (automatic) picks the first GPU when libtorch is found and sees one, else the CPU, and says which.
     *
     * @param threads CPU backend threads
     * @param option  how the option is written in messages ({@code --device=} for train, {@code --device } otherwise)
     */
    static Backend open(Device device, int threads, String option, Reporter reporter) {
        if (device != null && device.kind() == Device.Kind.CPU) {
            return new CpuBackend(threads);
        }
        LibTorch lib;
        try {
            lib = LibTorch.locateAndLoad();
        } catch (LibTorchLocator.NotFoundException | TorchException e) {
            if (device != null) {
                throw new InputException(option + device + ": no usable libtorch (" + Main.oneLine(e.getMessage())
                        + "); see docs/ENGINE.md, or use " + option + "cpu");
            }
            reporter.log(Reporter.Level.INFO, "INFO: device: cpu (" + threads + " threads; no libtorch found for a GPU)");
            return new CpuBackend(threads);
        }
        if (device == null) {
            if (lib.cudaDeviceCount() == 0) {
                reporter.log(Reporter.Level.INFO, "INFO: device: cpu (" + threads + " threads; " + lib.cudaProblem() + ")");
                return new CpuBackend(threads);
            }
            device = Device.cuda(0);
        }
        try {
            TorchBackend torch = new TorchBackend(lib, device);
            String math = device.kind() == Device.Kind.CUDA ? lib.applyCommandSwitches(LibTorch.MathMode.COMMANDS)
                    : lib.mathMode();
            reporter.log(Reporter.Level.INFO, "INFO: device: " + device + " (libtorch " + lib.version() + "; math: " + math
                    + ")");
            return torch;
        } catch (IllegalArgumentException e) {
            throw new InputException(option + device + ": " + e.getMessage());
        }
    }
}
