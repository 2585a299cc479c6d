import Dispatch
import Foundation
import Synchronization

/// A yes/no question at the terminal. Reading standard input blocks a thread, so it runs on one of
/// its own; when the caller stops waiting (someone approved elsewhere), the answer is dropped.
enum TerminalPrompt {
    @Sendable static func ask(_ question: String) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let box = ContinuationBox(continuation)
                CancelRegistry.shared.register(box)
                DispatchQueue.global().async {
                    FileHandle.standardOutput.write(Data(question.utf8))
                    let answer = readLine()?.trimmingCharacters(in: .whitespaces).lowercased()
                    box.resume(answer == "y" || answer == "yes")
                }
                if Task.isCancelled { box.resume(false) }
            }
        } onCancel: {
            CancelRegistry.shared.cancelAll()
        }
    }

    final class ContinuationBox: Sendable {
        private let continuation: Mutex<CheckedContinuation<Bool, Never>?>
        init(_ continuation: CheckedContinuation<Bool, Never>) {
            self.continuation = Mutex(continuation)
        }
        func resume(_ value: Bool) {
            continuation.withLock { stored in
                stored?.resume(returning: value)
                stored = nil
            }
        }
    }

    /// Pending prompts, answered "no" when their caller is cancelled.
    final class CancelRegistry: Sendable {
        static let shared = CancelRegistry()
        private let boxes = Mutex<[ContinuationBox]>([])
        func register(_ box: ContinuationBox) { boxes.withLock { $0.append(box) } }
        func cancelAll() {
            let all = boxes.withLock { boxes in
                defer { boxes.removeAll() }
                return boxes
            }
            all.forEach { $0.resume(false) }
        }
    }
}
