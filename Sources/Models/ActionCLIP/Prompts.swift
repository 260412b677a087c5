import Foundation

/// ActionCLIP's 16 text prompt templates (pipeline.md §5; ActionCLIP `Text_Prompt.py`, ailia `text_prompt`).
public enum PromptTemplates {
    /// The templates in ActionCLIP's order; `{}` is replaced by the label verbatim.
    public static let templates: [String] = [
        "a photo of action {}",
        "a picture of action {}",
        "Human action of {}",
        "{}, an action",
        "{} this is an action",
        "{}, a video of action",
        "Playing action of {}",
        "{}",
        "Playing a kind of action, {}",
        "Doing a kind of action, {}",
        "Look, the human is {}",
        "Can you recognize the action of {}?",
        "Video classification of {}",
        "A video of {}",
        "The man is {}",
        "The woman is {}",
    ]

    /// ailia's default labels (used when no `--text` / `--desc_file` is given), in index order.
    public static let defaultLabels: [String] = [
        "applauding", "dancing", "driving", "driving car", "driving truck",
        "eating", "punching", "reading", "surfing", "talking phone",
    ]

    /// All prompts for `labels`, template-major: row `t * labels.count + c` is template t filled with label c
    /// (16 * n strings). Only the first `{}` is replaced, like Python's `str.format` with one argument.
    public static func prompts(for labels: [String]) -> [String] {
        var prompts = [String]()
        prompts.reserveCapacity(templates.count * labels.count)
        for template in templates {
            for label in labels { prompts.append(fill(template, with: label)) }
        }
        return prompts
    }

    private static func fill(_ template: String, with label: String) -> String {
        guard let range = template.range(of: "{}") else { return template }
        return template.replacingCharacters(in: range, with: label)
    }
}
