//! `podium arena judge`: every contender answers every prompt, a judge model
//! compares the answers of every pair twice (once in each order), and each
//! pair becomes a battle (METRICS.md, "Judged battles"). Every answer of the
//! judge is stored, those without a verdict too, and counted.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use podium_arena::judge::{
    self, JudgeTemplate, JudgeTranscript, Unparseable, Verdict, bounded_output, conversation_json,
};
use podium_arena::{ArenaPrompt, Battle};
use podium_core::{Backend, BackendError, ChatMessage, GenerateRequest, GenerateResult};
use podium_store::{JudgedPair, JudgementRow, Location, Store};

use crate::UserError;

/// `podium arena judge`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
  podium arena judge --judge local:gemma3-270m -m mock:a -m local:smollm2-135m-instruct\n  \
  podium arena judge --judge 'openai-compatible:http://127.0.0.1:8000/v1#judge?api=chat' \\\n    \
  -m 'openai-compatible:http://127.0.0.1:8001/v1#m1?api=chat' -m … --category coding\n\n\
Each contender answers each prompt (greedy, through its chat template when it has\n\
one; an OpenAI-compatible chat model needs `?api=chat`). The judge (temperature 0)\n\
compares every pair of answers twice, the second time with the answers swapped:\n\
the same winner both times wins, anything else is a tie; a pair with a judge answer\n\
that holds no verdict makes no battle and is counted as unparseable. Battles are\n\
stored with the judge's name; running the same judging again judges only the pairs\n\
not stored yet.")]
pub(crate) struct JudgeArgs {
    /// The judge model's spec, KIND:REST (see `podium eval --help`)
    #[arg(long, value_name = "SPEC")]
    pub(crate) judge: String,

    /// A contender's model spec; give two or more
    #[arg(short = 'm', long = "model", value_name = "SPEC", required = true)]
    pub(crate) models: Vec<String>,

    /// Prompt set, JSON lines of {"id", "category"?, "prompt"} (default: the bundled 30 prompts)
    #[arg(long, value_name = "FILE")]
    pub(crate) prompts: Option<PathBuf>,

    /// Only the prompts of this category
    #[arg(long)]
    pub(crate) category: Option<String>,

    /// Only the first N prompts (after --category)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) limit: Option<u64>,

    /// Most tokens of each contender's answer
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_tokens: u64,

    /// Most tokens of each judge answer
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) judge_max_tokens: u64,

    /// A judging prompt of your own: a text file holding {question}, {answer_a} and
    /// {answer_b} once each (default: Arena-Hard's pairwise prompt, with its verdicts
    /// [[A>>B]] … [[B>>A]])
    #[arg(long, value_name = "FILE")]
    pub(crate) judge_prompt: Option<PathBuf>,
}

/// Prompts judged per round: each contender answers them in one batch and the
/// judge gets all their pairs in one batch, so a remote endpoint sees
/// concurrent requests.
const PROMPTS_PER_ROUND: usize = 8;

/// What a judging run did, printed at the end.
#[derive(Debug, Default)]
struct Tally {
    prompts: usize,
    battles: usize,
    decided: usize,
    ties_agreed: usize,
    ties_from_disagreement: usize,
    /// Pairs that made no battle because a verdict did not parse.
    unparseable_pairs: usize,
    /// Judge answers without a verdict.
    unparseable_answers: usize,
    judge_answers: usize,
    already_judged: usize,
    failed_answers: usize,
    failed_judgements: usize,
    first_error: Option<String>,
}

impl Tally {
    fn failed(&mut self, what: &str, error: &BackendError) {
        if self.first_error.is_none() {
            self.first_error = Some(format!("{what}: {error}"));
        }
    }
}

/// One contender: its backend and its name in the battles (its spec).
struct Contender {
    name: String,
    backend: Arc<dyn Backend>,
}

pub(crate) fn run(db: &Location, args: &JudgeArgs) -> anyhow::Result<ExitCode> {
    podium_backends::parse_spec(&args.judge)?;
    for spec in &args.models {
        podium_backends::parse_spec(spec)?;
    }
    let prompts = select_prompts(args)?;
    let template = match &args.judge_prompt {
        None => JudgeTemplate::default(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            JudgeTemplate::parse(&text)
                .map_err(|err| UserError(format!("{}: {err}", path.display())))?
        }
    };

    let store = crate::commands::open_store(db)?;
    // Remote backends answer repeated requests from the store's response
    // cache, so judging again after an interruption pays only for what is new.
    let cache: Arc<dyn podium_core::ResponseCache> = Arc::new(podium_eval::StoreCache::new(
        crate::commands::open_store(db)?,
    ));
    let judge = podium_backends::open_with_cache(&args.judge, Some(cache.clone()))?;
    let judge_name = judge.identity().spec;
    let mut contenders: Vec<Contender> = Vec::new();
    for spec in &args.models {
        let backend = podium_backends::open_with_cache(spec, Some(cache.clone()))?;
        let name = backend.identity().spec;
        if contenders.iter().any(|c| c.name == name) {
            return Err(UserError(format!("model `{name}` is given twice")).into());
        }
        contenders.push(Contender { name, backend });
    }
    if contenders.len() < 2 {
        return Err(
            UserError("judging needs two or more models: pass -m twice or more".into()).into(),
        );
    }
    if contenders.iter().any(|c| c.name == judge_name) {
        eprintln!(
            "warning: the judge `{judge_name}` is also a contender (judges tend to favour their own answers)"
        );
    }
    let already: HashSet<(String, String, String)> = store
        .judged_pairs(&judge_name)?
        .into_iter()
        .map(|(hash, a, b)| unordered(hash, a, b))
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let bar = crate::progress_bar(prompts.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>24} [{bar:30}] {pos}/{len} prompts {elapsed} (eta {eta}) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix("arena judge");
    let settings = Settings {
        judge: judge.as_ref(),
        judge_name: &judge_name,
        template: &template,
        max_tokens: args.max_tokens as usize,
        judge_max_tokens: args.judge_max_tokens as usize,
    };
    let mut tally = Tally::default();
    for round in prompts.chunks(PROMPTS_PER_ROUND) {
        runtime.block_on(judge_round(
            &store,
            &settings,
            &contenders,
            round,
            &already,
            &mut tally,
            &bar,
        ))?;
    }
    bar.finish_and_clear();
    crate::emit(&summary(&judge_name, contenders.len(), &tally))?;

    let n_failed = tally.failed_answers + tally.failed_judgements;
    if n_failed > 0 {
        eprintln!(
            "error: {n_failed} requests failed ({} answers, {} judge answers; first: {}); \
             their pairs were not stored: run the same command again to judge them",
            tally.failed_answers,
            tally.failed_judgements,
            tally.first_error.as_deref().unwrap_or("unknown")
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// The prompts to judge: the file's or the bundled set, of `--category`, the
/// first `--limit`.
fn select_prompts(args: &JudgeArgs) -> anyhow::Result<Vec<ArenaPrompt>> {
    let mut prompts = match &args.prompts {
        None => podium_arena::prompts::bundled(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            podium_arena::parse_prompts(&text)
                .map_err(|err| UserError(format!("{}: {err}", path.display())))?
        }
    };
    if let Some(category) = &args.category {
        let mut known: Vec<&str> = prompts
            .iter()
            .filter_map(|p| p.category.as_deref())
            .collect();
        known.sort_unstable();
        known.dedup();
        let selected: Vec<ArenaPrompt> = prompts
            .iter()
            .filter(|p| p.category.as_deref() == Some(category.as_str()))
            .cloned()
            .collect();
        if selected.is_empty() {
            return Err(UserError(format!(
                "no prompt has category `{category}` (the set's categories: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
            .into());
        }
        prompts = selected;
    }
    if let Some(limit) = args.limit {
        prompts.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok(prompts)
}

/// What every judge request shares.
struct Settings<'a> {
    judge: &'a dyn Backend,
    judge_name: &'a str,
    template: &'a JudgeTemplate,
    max_tokens: usize,
    judge_max_tokens: usize,
}

/// A pair of contenders (indices, `a < b`) to judge on one prompt.
struct PairJob {
    prompt: usize,
    a: usize,
    b: usize,
}

/// Judges one round of prompts and stores each prompt's pairs in one
/// transaction.
async fn judge_round(
    store: &Store,
    settings: &Settings<'_>,
    contenders: &[Contender],
    prompts: &[ArenaPrompt],
    already: &HashSet<(String, String, String)>,
    tally: &mut Tally,
    bar: &ProgressBar,
) -> anyhow::Result<()> {
    let hashes: Vec<String> = prompts
        .iter()
        .map(|p| podium_core::sha256_hex(p.prompt.as_bytes()))
        .collect();
    let mut jobs = Vec::new();
    for (index, hash) in hashes.iter().enumerate() {
        for a in 0..contenders.len() {
            for b in a + 1..contenders.len() {
                let key = unordered(
                    hash.clone(),
                    contenders[a].name.clone(),
                    contenders[b].name.clone(),
                );
                if already.contains(&key) {
                    tally.already_judged += 1;
                } else {
                    jobs.push(PairJob {
                        prompt: index,
                        a,
                        b,
                    });
                }
            }
        }
    }

    // answers[model][prompt]: each contender answers only the prompts it has a
    // pair to judge on.
    let mut answers: Vec<Vec<Option<String>>> = vec![vec![None; prompts.len()]; contenders.len()];
    for (model, contender) in contenders.iter().enumerate() {
        let needed: Vec<usize> = (0..prompts.len())
            .filter(|&p| {
                jobs.iter()
                    .any(|j| j.prompt == p && (j.a == model || j.b == model))
            })
            .collect();
        if needed.is_empty() {
            continue;
        }
        let requests = needed
            .iter()
            .map(|&p| {
                Ok(generation(
                    chat_prompt(contender.backend.as_ref(), &prompts[p].prompt)?,
                    settings.max_tokens,
                ))
            })
            .collect::<Result<Vec<_>, BackendError>>()
            .with_context(|| format!("model `{}`", contender.name))?;
        let results = contender
            .backend
            .generate_until(&requests)
            .await
            .with_context(|| format!("model `{}`", contender.name))?;
        for (&p, result) in needed.iter().zip(results) {
            match result {
                Ok(result) => answers[model][p] = Some(answer_text(&result)),
                Err(error) => {
                    tally.failed_answers += 1;
                    tally.failed(
                        &format!("model `{}` on prompt `{}`", contender.name, prompts[p].id),
                        &error,
                    );
                }
            }
        }
    }

    // Two judge requests per pair whose answers both came: model a's answer
    // first, then model b's first.
    let judged: Vec<&PairJob> = jobs
        .iter()
        .filter(|j| answers[j.a][j.prompt].is_some() && answers[j.b][j.prompt].is_some())
        .collect();
    let mut requests = Vec::with_capacity(judged.len() * 2);
    for job in &judged {
        let question = &prompts[job.prompt].prompt;
        let answer_a = answers[job.a][job.prompt].as_deref().unwrap_or_default();
        let answer_b = answers[job.b][job.prompt].as_deref().unwrap_or_default();
        for (first, second) in [(answer_a, answer_b), (answer_b, answer_a)] {
            let text = settings.template.render(question, first, second);
            requests.push(generation(
                chat_prompt(settings.judge, &text)
                    .with_context(|| format!("judge `{}`", settings.judge_name))?,
                settings.judge_max_tokens,
            ));
        }
    }
    let mut outputs = if requests.is_empty() {
        Vec::new()
    } else {
        settings
            .judge
            .generate_until(&requests)
            .await
            .with_context(|| format!("judge `{}`", settings.judge_name))?
    }
    .into_iter();

    let tstamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut per_prompt: Vec<Vec<JudgedPair>> = vec![Vec::new(); prompts.len()];
    for job in judged {
        let (Some(a_first), Some(b_first)) = (outputs.next(), outputs.next()) else {
            anyhow::bail!(
                "judge `{}` answered fewer requests than it was sent",
                settings.judge_name
            );
        };
        let prompt = &prompts[job.prompt];
        let (a_first, b_first) = match (a_first, b_first) {
            (Ok(a_first), Ok(b_first)) => (a_first.text, b_first.text),
            (Err(error), _) | (_, Err(error)) => {
                tally.failed_judgements += 1;
                tally.failed(
                    &format!("judge `{}` on prompt `{}`", settings.judge_name, prompt.id),
                    &error,
                );
                continue;
            }
        };
        let transcript = JudgeTranscript {
            a_first: bounded_output(&a_first).to_owned(),
            b_first: bounded_output(&b_first).to_owned(),
        };
        let model_a = &contenders[job.a].name;
        let model_b = &contenders[job.b].name;
        let verdicts = [
            judge::parse_verdict(&transcript.a_first),
            judge::parse_verdict(&transcript.b_first),
        ];
        let judgement =
            |a_first: bool, output: &str, verdict: &Result<Verdict, Unparseable>| JudgementRow {
                id: 0,
                battle_id: None,
                judge: settings.judge_name.to_owned(),
                prompt_id: prompt.id.clone(),
                prompt_hash: hashes[job.prompt].clone(),
                category: prompt.category.clone(),
                model_a: model_a.clone(),
                model_b: model_b.clone(),
                a_first,
                output: output.to_owned(),
                verdict: verdict.as_ref().ok().map(|v| v.as_str().to_owned()),
                reason: verdict.as_ref().err().map(|why| why.to_string()),
            };
        let judgements = vec![
            judgement(true, &transcript.a_first, &verdicts[0]),
            judgement(false, &transcript.b_first, &verdicts[1]),
        ];
        tally.judge_answers += 2;
        tally.unparseable_answers += verdicts.iter().filter(|v| v.is_err()).count();
        let battle = match verdicts {
            [Ok(a_first), Ok(b_first)] => {
                let combined = judge::combine(a_first, b_first);
                tally.battles += 1;
                if !combined.outcome.is_tie() {
                    tally.decided += 1;
                } else if combined.is_tie_from_disagreement() {
                    tally.ties_from_disagreement += 1;
                } else {
                    tally.ties_agreed += 1;
                }
                let answer_a = answers[job.a][job.prompt].as_deref().unwrap_or_default();
                let answer_b = answers[job.b][job.prompt].as_deref().unwrap_or_default();
                let battle = Battle {
                    category: prompt.category.clone(),
                    judge: Some(settings.judge_name.to_owned()),
                    tstamp,
                    conversation_a: Some(conversation_json(&prompt.prompt, answer_a)),
                    conversation_b: Some(conversation_json(&prompt.prompt, answer_b)),
                    // Both sides counted alike from the answers' text, so style
                    // control covers judged battles too.
                    style: Some([
                        podium_arena::formats::style_counts(answer_a),
                        podium_arena::formats::style_counts(answer_b),
                    ]),
                    judge_output: Some(transcript.to_json()),
                    ..Battle::new(model_a, model_b, combined.outcome)
                };
                Some(podium_board::arena::battle_row(&battle, "judge"))
            }
            _ => {
                tally.unparseable_pairs += 1;
                None
            }
        };
        per_prompt[job.prompt].push(JudgedPair { battle, judgements });
    }
    for (prompt, pairs) in prompts.iter().zip(&per_prompt) {
        if !pairs.is_empty() {
            store
                .insert_judged_pairs(pairs)
                .with_context(|| format!("cannot store the battles of prompt `{}`", prompt.id))?;
        }
        tally.prompts += 1;
        bar.inc(1);
    }
    bar.set_message(format!(
        "{} battles, {} unparseable",
        tally.battles, tally.unparseable_pairs
    ));
    Ok(())
}

/// A judged pair's key whichever way round its models were given.
fn unordered(hash: String, a: String, b: String) -> (String, String, String) {
    if a <= b { (hash, a, b) } else { (hash, b, a) }
}

/// `text` as the backend's user turn: through its chat template when it has
/// one; otherwise as it is (a chat API sends it as the user's message).
fn chat_prompt(backend: &dyn Backend, text: &str) -> Result<String, BackendError> {
    let messages = [ChatMessage {
        role: "user".into(),
        content: text.to_owned(),
    }];
    match backend.apply_chat_template(&messages, true) {
        Ok(prompt) => Ok(prompt),
        Err(BackendError::Unsupported(_)) => Ok(text.to_owned()),
        Err(error) => Err(error),
    }
}

/// A greedy generation request (temperature 0: the same answer every time,
/// so the response cache can answer a rerun).
fn generation(context: String, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        messages: None,
        context,
        until: Vec::new(),
        max_tokens,
        temperature: 0.0,
        top_p: 1.0,
        do_sample: false,
        seed: 0,
    }
}

/// An answer as the judge sees it and the battle stores it: the text without
/// the surrounding white space (reasoning, kept apart by the backend, is not
/// part of it).
fn answer_text(result: &GenerateResult) -> String {
    result.text.trim().to_owned()
}

fn summary(judge_name: &str, n_models: usize, tally: &Tally) -> String {
    let n_pairs = n_models * (n_models - 1) / 2;
    let mut text = format!(
        "judge {judge_name}: {} prompts, {n_models} models ({n_pairs} {} per prompt)\n",
        tally.prompts,
        if n_pairs == 1 { "pair" } else { "pairs" }
    );
    text.push_str(&format!(
        "battles stored: {} ({} won, {} ties: {} both orders said tie, {} ties from disagreement between the orders)\n",
        tally.battles,
        tally.decided,
        tally.ties_agreed + tally.ties_from_disagreement,
        tally.ties_agreed,
        tally.ties_from_disagreement
    ));
    text.push_str(&format!(
        "unparseable: {} pairs made no battle ({} of {} judge answers held no verdict; stored in the judgements table)\n",
        tally.unparseable_pairs, tally.unparseable_answers, tally.judge_answers
    ));
    if tally.already_judged > 0 {
        text.push_str(&format!(
            "already judged: {} pairs (stored before, skipped)\n",
            tally.already_judged
        ));
    }
    text.push_str(&format!(
        "next: podium arena ratings --judge {}\n",
        shell_quoted(judge_name)
    ));
    text
}

/// `text` as one shell word.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/@+=,%".contains(c));
    if plain {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
