//! The vocabulary as llama.cpp loads it from GGUF metadata: token texts, scores,
//! token types turned into attributes (with llama.cpp's by-name corrections),
//! special token ids and the add-BOS / add-EOS / space-prefix flags.

use std::collections::HashMap;

use candle_core::quantized::gguf_file::Value;
use rustc_hash::FxHashMap;

use crate::error::TokenizerError;
use crate::pretokenize::PreTokenizerRules;

/// What kind of token an id is, from `tokenizer.ggml.token_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    Normal,
    /// The unknown-word token (`<unk>`).
    Unknown,
    /// Control tokens (`<|im_start|>`, `<bos>`): parsed from text only when
    /// asked to, and not rendered by `decode`.
    Control,
    /// Added tokens that are always matched whole in text (Gemma's `\n\n`).
    UserDefined,
    Unused,
    /// SentencePiece byte-fallback tokens (`<0x0A>`).
    Byte,
    Undefined,
}

/// Token attributes, as llama.cpp's `llama_token_attr` bit flags.
pub(crate) mod attr {
    pub(crate) const UNKNOWN: u8 = 1 << 0;
    pub(crate) const UNUSED: u8 = 1 << 1;
    pub(crate) const NORMAL: u8 = 1 << 2;
    pub(crate) const CONTROL: u8 = 1 << 3;
    pub(crate) const USER_DEFINED: u8 = 1 << 4;
    pub(crate) const BYTE: u8 = 1 << 5;
    /// Whitespace before the token in the text is dropped (llama.cpp's `LSTRIP`).
    pub(crate) const LSTRIP: u8 = 1 << 6;
    /// Whitespace after the token in the text is dropped (llama.cpp's `RSTRIP`).
    pub(crate) const RSTRIP: u8 = 1 << 7;
}

/// Which algorithm turns text into ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VocabKind {
    /// `tokenizer.ggml.model = gpt2`: byte-level BPE with ranked merges.
    BytePairEncoding,
    /// `tokenizer.ggml.model = llama`: SentencePiece-style merges by score.
    SentencePiece,
    /// `tokenizer.ggml.model = bert`: WordPiece, longest token first (BERT).
    WordPiece,
}

pub(crate) struct Vocab {
    pub(crate) kind: VocabKind,
    pub(crate) pre_tokenizer_name: Option<String>,
    pub(crate) pre_tokenizer: Option<PreTokenizerRules>,
    pub(crate) texts: Vec<String>,
    pub(crate) scores: Vec<f32>,
    pub(crate) attrs: Vec<u8>,
    pub(crate) token_to_id: FxHashMap<Box<str>, u32>,
    /// `tokenizer.ggml.merges`, split into their two halves, in rank order.
    pub(crate) merges: Vec<(String, String)>,
    pub(crate) bos_id: Option<u32>,
    pub(crate) eos_id: Option<u32>,
    pub(crate) eot_id: Option<u32>,
    pub(crate) unk_id: Option<u32>,
    pub(crate) pad_id: Option<u32>,
    pub(crate) eog_ids: Vec<u32>,
    /// The separator WordPiece appends with `add_special` (`[SEP]`).
    pub(crate) sep_id: Option<u32>,
    pub(crate) add_bos: bool,
    pub(crate) add_eos: bool,
    pub(crate) add_space_prefix: bool,
    /// WordPiece's normalizer: lower-case the text, and drop accents.
    pub(crate) lowercase: bool,
    pub(crate) strip_accents: bool,
}

/// Texts llama.cpp treats as "end of turn" when `tokenizer.ggml.eot_token_id` is
/// absent; such tokens are forced to be control tokens.
const EOT_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<｜end▁of▁sentence｜>",
    "<end_of_utterance>",
];

/// Texts llama.cpp treats as "end of generation"; also forced to control.
const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Fill-in-the-middle tokens llama.cpp recognises by text when the file has no
/// `tokenizer.ggml.fim_*_token_id` (or the older `prefix`/`suffix`/`middle`) key: the
/// first one present becomes a control token. Padding, repository and file-separator
/// tokens also end generation.
const FIM_TEXTS: &[(&[&str], &[&str], bool)] = &[
    (
        &[
            "tokenizer.ggml.fim_pre_token_id",
            "tokenizer.ggml.prefix_token_id",
        ],
        &[
            "<|fim_prefix|>",
            "<fim-prefix>",
            "<fim_prefix>",
            "<｜fim▁begin｜>",
            "<PRE>",
            "▁<PRE>",
            "<|code_prefix|>",
            "<|prefix|>",
        ],
        false,
    ),
    (
        &[
            "tokenizer.ggml.fim_suf_token_id",
            "tokenizer.ggml.suffix_token_id",
        ],
        &[
            "<|fim_suffix|>",
            "<fim-suffix>",
            "<fim_suffix>",
            "<｜fim▁hole｜>",
            "<SUF>",
            "▁<SUF>",
            "<|code_suffix|>",
            "<|suffix|>",
        ],
        false,
    ),
    (
        &[
            "tokenizer.ggml.fim_mid_token_id",
            "tokenizer.ggml.middle_token_id",
        ],
        &[
            "<|fim_middle|>",
            "<fim-middle>",
            "<fim_middle>",
            "<｜fim▁end｜>",
            "<MID>",
            "▁<MID>",
            "<|code_middle|>",
            "<|middle|>",
        ],
        false,
    ),
    (
        &["tokenizer.ggml.fim_pad_token_id"],
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        true,
    ),
    (
        &["tokenizer.ggml.fim_rep_token_id"],
        &[
            "<|fim_repo|>",
            "<|repo_name|>",
            "<fim-repo>",
            "<REPO>",
            "<reponame>",
        ],
        true,
    ),
    (
        &["tokenizer.ggml.fim_sep_token_id"],
        &["<|file_sep|>"],
        true,
    ),
];

/// gpt-oss's channel markers, which llama.cpp always renders as user-defined.
const ALWAYS_USER_DEFINED_TEXTS: &[&str] =
    &["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/// The largest vocabulary accepted (real ones have up to ~260k tokens); each token costs
/// a few allocations, so a bound keeps a hostile file from exhausting memory.
pub(crate) const MAX_TOKENS: usize = 1 << 22;
/// The most merges accepted.
pub(crate) const MAX_MERGES: usize = 1 << 22;

type Metadata = HashMap<String, Value>;

fn get_string<'m>(md: &'m Metadata, key: &'static str) -> Result<Option<&'m str>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "a string",
        }),
    }
}

fn value_as_i64(value: &Value) -> Option<i64> {
    Some(match *value {
        Value::U8(v) => v.into(),
        Value::I8(v) => v.into(),
        Value::U16(v) => v.into(),
        Value::I16(v) => v.into(),
        Value::U32(v) => v.into(),
        Value::I32(v) => v.into(),
        Value::U64(v) => i64::try_from(v).ok()?,
        Value::I64(v) => v,
        _ => return None,
    })
}

fn get_integer(md: &Metadata, key: &'static str) -> Result<Option<i64>, TokenizerError> {
    md.get(key)
        .map(|value| {
            value_as_i64(value).ok_or(TokenizerError::WrongType {
                key,
                expected: "an integer",
            })
        })
        .transpose()
}

fn get_bool(md: &Metadata, key: &'static str) -> Result<Option<bool>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "a boolean",
        }),
    }
}

fn get_array<'m>(
    md: &'m Metadata,
    key: &'static str,
) -> Result<Option<&'m [Value]>, TokenizerError> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items)),
        Some(_) => Err(TokenizerError::WrongType {
            key,
            expected: "an array",
        }),
    }
}

impl Vocab {
    pub(crate) fn from_metadata(md: &Metadata) -> Result<Vocab, TokenizerError> {
        let model = get_string(md, "tokenizer.ggml.model")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        let pre_name = get_string(md, "tokenizer.ggml.pre")?.map(str::to_owned);

        // Defaults per model type, as llama.cpp sets them before reading keys.
        let bpe = |name: &str, bos: Option<u32>, eos: Option<u32>| {
            let rules = PreTokenizerRules::for_name(name)
                .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer(name.to_owned()))?;
            let add_bos = rules.default_add_bos;
            Ok::<_, TokenizerError>((
                VocabKind::BytePairEncoding,
                Some(rules),
                bos,
                eos,
                None,
                add_bos,
                false,
            ))
        };
        let (
            kind,
            pre_tokenizer,
            mut bos_id,
            mut eos_id,
            mut unk_id,
            mut add_bos,
            mut add_space_prefix,
        ) = match model {
            "llama" => (
                VocabKind::SentencePiece,
                None,
                Some(1),
                Some(2),
                Some(0),
                true,
                true,
            ),
            // llama.cpp warns and uses its "default" pre-tokenizer when the file names
            // none.
            "gpt2" => bpe(pre_name.as_deref().unwrap_or("default"), Some(11), Some(11))?,
            // Gemma 4: llama.cpp uses its own pre-tokenizer, whatever the file says.
            "gemma4" => bpe("gemma4", None, None)?,
            // BERT: [CLS] 101 opens, [SEP] 102 closes, [UNK] 100; the pre-tokenizer
            // name (`bert-bge`) is not used, as in llama.cpp.
            "bert" => (
                VocabKind::WordPiece,
                None,
                Some(101),
                None,
                Some(100),
                true,
                false,
            ),
            other => return Err(TokenizerError::UnsupportedModel(other.to_owned())),
        };
        if let Some(flag) = get_bool(md, "tokenizer.ggml.add_space_prefix")? {
            add_space_prefix = flag;
        }

        let tokens = get_array(md, "tokenizer.ggml.tokens")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?;
        let n_tokens = tokens.len();
        if n_tokens == 0 || n_tokens > MAX_TOKENS {
            return Err(TokenizerError::Invalid {
                key: "tokenizer.ggml.tokens",
                message: format!("{n_tokens} tokens (1 to {MAX_TOKENS} expected)"),
            });
        }
        let mut texts = Vec::with_capacity(n_tokens);
        let mut token_to_id = FxHashMap::default();
        token_to_id.reserve(n_tokens);
        for (id, token) in tokens.iter().enumerate() {
            let Value::String(text) = token else {
                return Err(TokenizerError::WrongType {
                    key: "tokenizer.ggml.tokens",
                    expected: "an array of strings",
                });
            };
            // llama.cpp gives empty tokens a placeholder text so that they can
            // never match; do the same so ids line up.
            let text = if text.is_empty() {
                format!("[EMPTY_{id}]")
            } else {
                text.clone()
            };
            let id = id as u32;
            if let Some(&first) = token_to_id.get(text.as_str()) {
                return Err(TokenizerError::DuplicateToken {
                    text,
                    first,
                    second: id,
                });
            }
            token_to_id.insert(text.clone().into_boxed_str(), id);
            texts.push(text);
        }

        let scores = match get_array(md, "tokenizer.ggml.scores")? {
            None => vec![0.0; n_tokens],
            Some(values) => {
                check_len("tokenizer.ggml.scores", values.len(), n_tokens)?;
                values
                    .iter()
                    .enumerate()
                    .map(|(id, value)| match *value {
                        // The merge order compares scores: NaN has no place in it.
                        Value::F32(score) if score.is_nan() => Err(TokenizerError::Invalid {
                            key: "tokenizer.ggml.scores",
                            message: format!("the score of token {id} is NaN"),
                        }),
                        Value::F32(score) => Ok(score),
                        Value::I32(score) => Ok(score as f32),
                        _ => Err(TokenizerError::WrongType {
                            key: "tokenizer.ggml.scores",
                            expected: "an array of numbers",
                        }),
                    })
                    .collect::<Result<Vec<_>, _>>()?
            }
        };

        let mut attrs = match get_array(md, "tokenizer.ggml.token_type")? {
            None => vec![attr::NORMAL; n_tokens],
            Some(values) => {
                check_len("tokenizer.ggml.token_type", values.len(), n_tokens)?;
                values
                    .iter()
                    .map(|value| {
                        let token_type = value_as_i64(value).ok_or(TokenizerError::WrongType {
                            key: "tokenizer.ggml.token_type",
                            expected: "an array of integers",
                        })?;
                        Ok(match token_type {
                            1 => attr::NORMAL,
                            2 => attr::UNKNOWN,
                            3 => attr::CONTROL,
                            4 => attr::USER_DEFINED,
                            5 => attr::UNUSED,
                            6 => attr::BYTE,
                            _ => 0,
                        })
                    })
                    .collect::<Result<Vec<_>, TokenizerError>>()?
            }
        };

        let merges = match get_array(md, "tokenizer.ggml.merges")? {
            None if kind == VocabKind::BytePairEncoding => {
                return Err(TokenizerError::MissingKey("tokenizer.ggml.merges"));
            }
            None => Vec::new(),
            Some(values) if values.len() > MAX_MERGES => {
                return Err(TokenizerError::Invalid {
                    key: "tokenizer.ggml.merges",
                    message: format!("{} merges (at most {MAX_MERGES})", values.len()),
                });
            }
            Some(values) => values
                .iter()
                .enumerate()
                .map(|(rank, value)| match value {
                    Value::String(merge) => {
                        split_merge(merge).ok_or_else(|| TokenizerError::Invalid {
                            key: "tokenizer.ggml.merges",
                            message: format!(
                                "merge {rank} ({merge:?}) is not two texts separated by a space"
                            ),
                        })
                    }
                    _ => Err(TokenizerError::WrongType {
                        key: "tokenizer.ggml.merges",
                        expected: "an array of strings",
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?,
        };

        let special_id =
            |key: &'static str, default: Option<u32>| -> Result<Option<u32>, TokenizerError> {
                let default = default.filter(|&id| (id as usize) < n_tokens);
                Ok(match get_integer(md, key)? {
                    Some(id) if id >= 0 && (id as usize) < n_tokens => Some(id as u32),
                    _ => default,
                })
            };
        bos_id = special_id("tokenizer.ggml.bos_token_id", bos_id)?;
        eos_id = special_id("tokenizer.ggml.eos_token_id", eos_id)?;
        unk_id = special_id("tokenizer.ggml.unknown_token_id", unk_id)?;
        let mut eot_id = special_id("tokenizer.ggml.eot_token_id", None)?;
        let pad_id = special_id(
            "tokenizer.ggml.padding_token_id",
            (kind == VocabKind::WordPiece).then_some(0),
        )?;
        // llama.cpp's key is spelled this way.
        let sep_id = special_id(
            "tokenizer.ggml.seperator_token_id",
            (kind == VocabKind::WordPiece).then_some(102),
        )?;

        if let Some(flag) = get_bool(md, "tokenizer.ggml.add_bos_token")? {
            add_bos = flag;
        }
        if model == "gemma4" {
            // llama.cpp overrides a Gemma 4 file that says not to add BOS.
            add_bos = true;
        }
        if kind == VocabKind::WordPiece {
            // llama.cpp's WordPiece always opens with BOS and closes with SEP under
            // `add_special`, whatever `add_bos_token` says.
            add_bos = true;
            if sep_id.is_none() {
                return Err(TokenizerError::MissingKey(
                    "tokenizer.ggml.seperator_token_id",
                ));
            }
        }
        let lowercase = get_bool(md, "tokenizer.ggml.normalizer.lowercase")?.unwrap_or(true);
        let strip_accents =
            get_bool(md, "tokenizer.ggml.normalizer.strip_accents")?.unwrap_or(lowercase);
        let add_eos = get_bool(md, "tokenizer.ggml.add_eos_token")?.unwrap_or(false);
        if add_bos && bos_id.is_none() {
            return Err(TokenizerError::MissingSpecialToken {
                key: "tokenizer.ggml.add_bos_token",
                id_key: "tokenizer.ggml.bos_token_id",
            });
        }
        if add_eos && eos_id.is_none() {
            return Err(TokenizerError::MissingSpecialToken {
                key: "tokenizer.ggml.add_eos_token",
                id_key: "tokenizer.ggml.eos_token_id",
            });
        }

        // llama.cpp's by-text corrections: end-of-turn and end-of-generation
        // tokens become control tokens, and control tokens named "unused"
        // become unused. They decide which texts are parsed as special.
        let id_of = |text: &str| token_to_id.get(text).copied();
        if eot_id.is_none() {
            // llama.cpp takes whichever its hash map yields first; the list order
            // is the better guess when a vocabulary has several (SmolLM has both
            // `<|im_end|>` and `<|endoftext|>`, and `<|im_end|>` ends a turn).
            eot_id = EOT_TEXTS.iter().find_map(|text| id_of(text));
        }
        let mut eog_ids: Vec<u32> = Vec::new();
        for &(keys, candidates, ends_generation) in FIM_TEXTS {
            let mut id = None;
            for &key in keys {
                id = id.or(special_id(key, None)?);
            }
            if id.is_none() {
                id = candidates.iter().find_map(|text| id_of(text));
                if let Some(id) = id {
                    attrs[id as usize] |= attr::CONTROL;
                }
            }
            if ends_generation {
                eog_ids.extend(id);
            }
        }
        for &id in EOT_TEXTS
            .iter()
            .filter_map(|text| id_of(text))
            .collect::<Vec<_>>()
            .iter()
        {
            attrs[id as usize] |= attr::CONTROL;
        }
        for (id, text) in texts.iter().enumerate() {
            if attrs[id] & attr::CONTROL != 0 && text.contains("unused") {
                attrs[id] |= attr::UNUSED;
            }
        }
        for id in EOG_TEXTS.iter().filter_map(|text| id_of(text)) {
            attrs[id as usize] |= attr::CONTROL;
            eog_ids.push(id);
        }
        for &id in ALWAYS_USER_DEFINED_TEXTS
            .iter()
            .filter_map(|text| id_of(text))
            .collect::<Vec<_>>()
            .iter()
        {
            attrs[id as usize] = attr::USER_DEFINED;
        }
        eog_ids.extend(eos_id);
        eog_ids.extend(eot_id);
        eog_ids.sort_unstable();
        eog_ids.dedup();
        let eog_with = |eog_ids: &[u32], wanted: &[&str]| {
            eog_ids
                .iter()
                .any(|&id| wanted.contains(&texts[id as usize].as_str()))
        };
        // llama.cpp's workarounds: with gpt-oss's (or Solar Open's) call tokens,
        // `<|end|>` does not end generation and is an ordinary added token; next to
        // Gemma 4's `<|tool_response>` (or PLaMo's end), `</s>` is a normal token.
        let call = eog_with(&eog_ids, &["<|call|>", "<|calls|>"]);
        if call
            && eog_with(&eog_ids, &["<|return|>", "<|flush|>"])
            && let Some(end) = id_of("<|end|>").filter(|id| eog_ids.contains(id))
        {
            eog_ids.retain(|&id| id != end);
            attrs[end as usize] = attr::USER_DEFINED;
        }
        if eog_with(&eog_ids, &["<|tool_response>", "<|plamo:eos|>"])
            && let Some(s) = id_of("</s>").filter(|id| eog_ids.contains(id))
        {
            eog_ids.retain(|&id| id != s);
            attrs[s as usize] = attr::NORMAL;
        }
        set_strip_attributes(md, pre_name.as_deref(), &token_to_id, &mut attrs)?;

        Ok(Vocab {
            kind,
            pre_tokenizer_name: pre_name,
            pre_tokenizer,
            texts,
            scores,
            attrs,
            token_to_id,
            merges,
            bos_id,
            eos_id,
            eot_id,
            unk_id,
            pad_id,
            eog_ids,
            sep_id,
            add_bos,
            add_eos,
            add_space_prefix,
            lowercase,
            strip_accents,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.texts.len()
    }

    pub(crate) fn kind_of(&self, id: u32) -> TokenKind {
        let a = self.attrs[id as usize];
        if a & attr::UNKNOWN != 0 {
            TokenKind::Unknown
        } else if a & attr::CONTROL != 0 {
            TokenKind::Control
        } else if a & attr::USER_DEFINED != 0 {
            TokenKind::UserDefined
        } else if a & attr::BYTE != 0 {
            TokenKind::Byte
        } else if a & attr::UNUSED != 0 {
            TokenKind::Unused
        } else if a & attr::NORMAL != 0 {
            TokenKind::Normal
        } else {
            TokenKind::Undefined
        }
    }
}

/// llama.cpp's whitespace-stripping attributes, set by model name: the mask token of
/// Jina v2 / Nomic BERT MoE / Jina BERT v3 and Modern BERT eats the whitespace before
/// it; Phi-3's special tokens (but `<unk>`, `<s>` and `<|endoftext|>`) and `</s>` eat
/// the whitespace after them.
fn set_strip_attributes(
    md: &Metadata,
    pre_name: Option<&str>,
    token_to_id: &FxHashMap<Box<str>, u32>,
    attrs: &mut [u8],
) -> Result<(), TokenizerError> {
    let model_name = get_string(md, "general.name")?
        .unwrap_or_default()
        .to_ascii_lowercase();
    let architecture = get_string(md, "general.architecture")?.unwrap_or_default();
    let pre = pre_name.unwrap_or_default();
    let contains_any =
        |haystack: &str, needles: &[&str]| needles.iter().any(|n| haystack.contains(n));
    let set = |attrs: &mut [u8], text: &str, bit: u8, on: bool| {
        if let Some(&id) = token_to_id.get(text) {
            if on {
                attrs[id as usize] |= bit;
            } else {
                attrs[id as usize] &= !bit;
            }
        }
    };
    if contains_any(pre, &["jina-v2-de", "jina-v2-es", "jina-v2-code"])
        || contains_any(architecture, &["nomic-bert-moe", "jina-bert-v3"])
    {
        set(attrs, "<mask>", attr::LSTRIP, true);
    } else if contains_any(&model_name, &["phi-3", "phi3"]) {
        for a in attrs.iter_mut() {
            if *a & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0 {
                *a |= attr::RSTRIP;
            }
        }
        set(attrs, "</s>", attr::RSTRIP, true);
        for text in ["<unk>", "<s>", "<|endoftext|>"] {
            set(attrs, text, attr::RSTRIP, false);
        }
    } else if model_name.contains("modern-bert") {
        set(attrs, "[MASK]", attr::LSTRIP, true);
    }
    Ok(())
}

/// Splits a merge `"left right"` at the first space after the first byte, so that a
/// merge whose left half is itself a space still splits right; `None` when there is no
/// such space or a half is empty.
fn split_merge(merge: &str) -> Option<(String, String)> {
    let first_len = merge.chars().next()?.len_utf8();
    let pos = first_len + merge[first_len..].find(' ')?;
    let (left, right) = (&merge[..pos], &merge[pos + 1..]);
    (!right.is_empty()).then(|| (left.to_owned(), right.to_owned()))
}

/// Every per-token array has exactly one entry per token.
fn check_len(key: &'static str, got: usize, expected: usize) -> Result<(), TokenizerError> {
    if got != expected {
        return Err(TokenizerError::LengthMismatch { key, got, expected });
    }
    Ok(())
}
