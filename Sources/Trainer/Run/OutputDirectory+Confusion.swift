extension OutputDirectory {
    var confusionFile: String { path + "/confusion.csv" }

    /// OUTPUT/confusion.csv: this epoch's validation matrix, replacing the previous epoch's in one rename. Like the
    /// pictures it comes after the checkpoint, and a file that cannot be written only warns.
    func writeConfusion(_ matrix: ConfusionMatrix?, progress: ProgressReport?) {
        guard let matrix else { return }
        confusion = matrix
        do {
            try matrix.writeCSV(to: confusionFile)
        } catch {
            let text = "warning: \(error); confusion.csv is not updated this epoch "
                + "(the checkpoint is written; training goes on)"
            if let progress { progress.line(text) } else { print(text) }
        }
    }
}
