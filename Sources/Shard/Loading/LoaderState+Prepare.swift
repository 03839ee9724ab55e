import Basics
import Foundation

/// Preparing samples: from the preloaded tensors, the decoded cache or the file, with a deterministic replacement for
/// a bad file, then preprocessed into the slot. Runs without the lock, except for short reads of shared state.
extension LoaderState {
    /// Prepares several samples (without the lock). From preloaded tensors, the first cache line of every sample is
    /// loaded before any is copied, so that their memory latencies overlap instead of adding up (a batch of 32
    /// Fashion-MNIST samples lies on 32 random pages of a 190 MB buffer).
    func prepare(_ tasks: [Task], reader: ImageReader?, into destination: UnsafeMutablePointer<Float>?) -> [Outcome] {
        if let tensors, tasks.count > 1 {
            var touched: Float = 0
            for task in tasks { touched += tensors[Int(task.sample) &* imageSize] }
            touchSink = touched
        }
        return tasks.map { task in
            prepare(task, reader: reader, into: destination.map { $0 + task.item * imageSize })
        }
    }
    /// Prepares `task`'s sample into `output`, or its place in the slot (without the lock).
    func prepare(_ task: Task, reader: ImageReader?, into output: UnsafeMutablePointer<Float>? = nil) -> Outcome {
        guard case .dataset(let index) = source, let reader else {
            return .failed(DataError("cannot read images: no image reader"), newlyBad: [])
        }
        let training = sampler.mode == .training
        return prepare(sample: task.sample, index: index, epoch: task.epoch, reader: reader, training: training,
                       minimumSide: preprocessor.minimumDecodeShorterSide(training: training),
                       gray: preprocessor.options.channels == 1,
                       into: output ?? images + (task.slot * options.batchSize + task.item) * imageSize)
    }

    /// Decodes `sample` (or, if its file is bad, a deterministic replacement) and preprocesses it into `output`.
    /// Runs without the lock, except for short reads of the shared bad-file set and cache.
    private func prepare(sample: Int32, index: DatasetIndex, epoch: Int, reader: ImageReader, training: Bool,
                         minimumSide: Int, gray: Bool, into output: UnsafeMutablePointer<Float>) -> Outcome {
        var candidate = sample
        var newlyBad: [(Int32, String)] = []
        for attempt in 0...100 {
            if attempt > 0 {
                // Key "SUBS": the attempt-th replacement of a bad file, the same on every rank and run.
                var pick = SeededGenerator(dataSeed: options.seed, 0x5355_4253, UInt64(sample), UInt64(attempt))
                candidate = Int32(pick.next(upperBound: UInt64(index.count)))
            }
            if locked({ bad.contains(candidate) }) { continue }
            if let tensors, tensorReady[Int(candidate)] {   // set before the workers start, read-only after
                output.update(from: tensors + Int(candidate) * imageSize, count: imageSize)
                return .prepared(label: index.labels[Int(candidate)], newlyBad: newlyBad, replaced: candidate != sample)
            }
            // Read only when needed: a random entry of this array is a cache miss.
            let cached = options.cacheDecoded ? locked { decodedCache[Int(candidate)] } : nil
            let image: Image
            if let cached {
                image = cached
            } else {
                do {
                    image = try reader.read(path: index.path(Int(candidate)), minimumShorterSide: minimumSide,
                                            gray: gray)
                } catch {
                    let message = (error as? DataError)?.message ?? "\(index.path(Int(candidate))): \(error)"
                    newlyBad.append((candidate, message))
                    continue
                }
                if options.cacheDecoded { locked { decodedCache[Int(candidate)] = image } }
            }
            // Key "AUGM": this sample's crop and flip in this epoch.
            var random = SeededGenerator(dataSeed: options.seed, 0x4155_474D, UInt64(epoch), UInt64(candidate))
            preprocessor.apply(image, training: training, random: &random, into: output)
            return .prepared(label: index.labels[Int(candidate)], newlyBad: newlyBad, replaced: candidate != sample)
        }
        let problem = DataError("no readable image found to replace '\(index.path(Int(sample)))' after 100 tries: "
                                + "is '\(index.splitPath)' full of damaged files?")
        return .failed(problem, newlyBad: newlyBad)
    }
}
