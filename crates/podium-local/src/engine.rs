//! Scoring and generation on token ids: shared-prefix continuation scoring, rolling
//! windows, and a decode loop. Knows nothing of text; the tokenizer lives a layer up.

use std::ops::ControlFlow;

use candle_core::Tensor;

use crate::error::{LocalError, Result};
use crate::model::{KvCache, Model, TokenScore, logits_rows, row_logprob};
use crate::sampling::{Sampler, SamplingParams};

/// The score of one token sequence given what precedes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceScore {
    /// Sum of the natural-log probabilities of the scored tokens.
    pub logprob: f64,
    /// Whether greedy decoding would have produced every scored token.
    pub is_greedy: bool,
    /// Number of tokens scored.
    pub n_tokens: usize,
    /// Per-token log-probabilities, in order.
    pub token_logprobs: Vec<f64>,
    /// The most likely token at each scored position, and its log-probability
    /// (what an OpenAI-style `top_logprobs: 1` reports).
    pub top_token_ids: Vec<u32>,
    pub top_logprobs: Vec<f64>,
}

impl SequenceScore {
    fn from_tokens(tokens: &[TokenScore]) -> SequenceScore {
        SequenceScore {
            logprob: tokens.iter().map(|t| t.logprob).sum(),
            is_greedy: tokens.iter().all(|t| t.greedy),
            n_tokens: tokens.len(),
            token_logprobs: tokens.iter().map(|t| t.logprob).collect(),
            top_token_ids: tokens.iter().map(|t| t.top_id).collect(),
            top_logprobs: tokens.iter().map(|t| t.top_logprob).collect(),
        }
    }
}

/// A context run as one path, with continuations branching off its last token.
struct Tree<'a> {
    trunk: &'a [u32],
    continuations: &'a [Vec<u32>],
    /// The indices of `continuations` to run (all non-empty).
    group: &'a [usize],
}

/// Wall times of [`Engine::speed`], llama-bench style.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpeedReport {
    pub n_prompt: usize,
    /// Seconds to run the prompt as one batch and compute its last logits.
    pub prompt_s: f64,
    pub n_generated: usize,
    /// Seconds to decode the tokens one at a time, logits included.
    pub generate_s: f64,
}

/// Limits that bound memory and batch shapes.
#[derive(Debug, Clone)]
pub(crate) struct EngineSettings {
    /// Longest sequence the model is run on (tokens); longer inputs are truncated on the left.
    pub(crate) max_context: usize,
    /// Most tokens (batch x length) in one forward call.
    pub(crate) max_batch_tokens: usize,
    /// Most logit rows materialized at once (a row is `vocab` floats).
    pub(crate) max_logit_rows: usize,
}

/// Why a generation loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An end-of-generation token came out (it is not part of the output).
    EndOfText,
    /// The token limit was reached.
    Length,
    /// The caller stopped it (a stop string, or a closed stream).
    Stopped,
    /// The model's context is full.
    ContextFull,
}

/// The model plus the settings it runs under; lives on the model thread.
pub(crate) struct Engine {
    pub(crate) model: Model,
    pub(crate) settings: EngineSettings,
}

impl Engine {
    /// Scores each continuation after `context` (both token ids), computing the context
    /// once and reusing its keys and values for every continuation.
    pub(crate) fn score_continuations(
        &self,
        context: &[u32],
        continuations: &[Vec<u32>],
    ) -> Result<Vec<SequenceScore>> {
        if context.is_empty() {
            return Err(LocalError::InvalidInput(
                "a scored continuation needs at least one context token".into(),
            ));
        }
        let limit = self.settings.max_context + 1;
        let mut results: Vec<Option<SequenceScore>> = vec![None; continuations.len()];
        let mut shared = Vec::new();
        for (i, continuation) in continuations.iter().enumerate() {
            if continuation.is_empty() {
                results[i] = Some(SequenceScore::from_tokens(&[]));
            } else if context.len() + continuation.len() > limit {
                // Like lm-evaluation-harness: keep the last `max_context + 1` tokens of
                // context + continuation, so this one cannot share the full context.
                let whole: Vec<u32> = context.iter().chain(continuation).copied().collect();
                let kept = &whole[whole.len() - limit..];
                let n_scored = continuation.len().min(limit - 1);
                let (ctx, cont) = kept.split_at(kept.len() - n_scored);
                let score = self.score_continuations(ctx, &[cont.to_vec()])?;
                results[i] = score.into_iter().next();
            } else {
                shared.push(i);
            }
        }
        if !shared.is_empty() {
            let mut scores: Vec<Vec<TokenScore>> = vec![Vec::new(); continuations.len()];
            self.score_shared(context, continuations, &shared, &mut scores)?;
            for &i in &shared {
                results[i] = Some(SequenceScore::from_tokens(&scores[i]));
            }
        }
        results
            .into_iter()
            .map(|r| r.ok_or_else(|| LocalError::InvalidInput("continuation not scored".into())))
            .collect()
    }

    /// Scores `continuations[i]` for each `i` in `shared` after the whole `context`, into
    /// `scores[i]`. The context and as many continuations as fit in `max_batch_tokens` run
    /// as one packed tree (no padding, one forward call); a longer context is prefilled
    /// first, and a continuation too long to pack runs on its own in chunks.
    fn score_shared(
        &self,
        context: &[u32],
        continuations: &[Vec<u32>],
        shared: &[usize],
        scores: &mut [Vec<TokenScore>],
    ) -> Result<()> {
        let budget = self.settings.max_batch_tokens.max(1);
        let input_len = |i: usize| continuations[i].len() - 1;
        let packed_len = context.len() + shared.iter().map(|&i| input_len(i)).sum::<usize>();
        let empty = self.model.new_cache();
        if packed_len <= budget {
            let tree = Tree {
                trunk: context,
                continuations,
                group: shared,
            };
            return self.score_trees(&empty, &[tree], &mut |_, i, score| scores[i].push(score));
        }
        // Prefill all but the last context token; each group of continuations then runs
        // after that token again (one token, so that its logits come out with the group's).
        let (head, last) = context.split_at(context.len() - 1);
        let mut prefix = self.model.new_cache();
        if !head.is_empty() {
            self.prefill(head, &mut prefix)?;
        }
        let (packable, oversize): (Vec<usize>, Vec<usize>) =
            shared.iter().partition(|&&i| input_len(i) < budget);
        let mut group = Vec::new();
        let mut group_len = 1;
        for &i in &packable {
            if group_len + input_len(i) > budget {
                self.score_group_after(&prefix, last, continuations, &group, scores)?;
                group.clear();
                group_len = 1;
            }
            group.push(i);
            group_len += input_len(i);
        }
        if !group.is_empty() {
            self.score_group_after(&prefix, last, continuations, &group, scores)?;
        }
        if !oversize.is_empty() {
            let mut cache = prefix;
            let last_hidden = self.prefill(last, &mut cache)?;
            let last_logits = logits_rows(&self.model.logits(&last_hidden)?)?;
            let inputs: Vec<&[u32]> = oversize
                .iter()
                .map(|&i| &continuations[i][..input_len(i)])
                .collect();
            let targets: Vec<&[u32]> = oversize.iter().map(|&i| &continuations[i][1..]).collect();
            let rest = self.score_after(&cache, &inputs, &targets)?;
            for (&i, rest) in oversize.iter().zip(rest) {
                scores[i].push(row_logprob(&last_logits[0], continuations[i][0]));
                scores[i].extend(rest);
            }
        }
        Ok(())
    }

    fn score_group_after(
        &self,
        prefix: &KvCache,
        last: &[u32],
        continuations: &[Vec<u32>],
        group: &[usize],
        scores: &mut [Vec<TokenScore>],
    ) -> Result<()> {
        let tree = Tree {
            trunk: last,
            continuations,
            group,
        };
        self.score_trees(prefix, &[tree], &mut |_, i, score| scores[i].push(score))
    }

    /// Scores many requests (a context and its continuations, as token ids), packing as
    /// many whole requests as fit in `max_batch_tokens` into each forward call: bigger
    /// matrix products run faster per token. A request that does not fit, or needs its
    /// context truncated, runs on its own through [`Engine::score_continuations`].
    pub(crate) fn score_many(
        &self,
        items: &[(Vec<u32>, Vec<Vec<u32>>)],
    ) -> Vec<Result<Vec<SequenceScore>>> {
        let budget = self.settings.max_batch_tokens.max(1);
        let limit = self.settings.max_context + 1;
        let packed_len = |(context, continuations): &(Vec<u32>, Vec<Vec<u32>>)| {
            context.len()
                + continuations
                    .iter()
                    .map(|c| c.len().saturating_sub(1))
                    .sum::<usize>()
        };
        let packable = |item: &(Vec<u32>, Vec<Vec<u32>>)| {
            let (context, continuations) = item;
            !context.is_empty()
                && continuations
                    .iter()
                    .all(|c| !c.is_empty() && context.len() + c.len() <= limit)
                && packed_len(item) <= budget
        };
        let mut results: Vec<Option<Result<Vec<SequenceScore>>>> =
            items.iter().map(|_| None).collect();
        let mut pack: Vec<usize> = Vec::new();
        let mut pack_len = 0;
        for (i, item) in items.iter().enumerate() {
            if !packable(item) {
                results[i] = Some(self.score_continuations(&item.0, &item.1));
                continue;
            }
            if pack_len + packed_len(item) > budget {
                self.score_pack(items, &pack, &mut results);
                pack.clear();
                pack_len = 0;
            }
            pack.push(i);
            pack_len += packed_len(item);
        }
        self.score_pack(items, &pack, &mut results);
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Err(LocalError::InvalidInput("request not scored".into())))
            })
            .collect()
    }

    /// Scores the requests `pack` of `items` in one packed forward call; if that fails, each
    /// one alone, so that one bad request cannot fail the others.
    fn score_pack(
        &self,
        items: &[(Vec<u32>, Vec<Vec<u32>>)],
        pack: &[usize],
        results: &mut [Option<Result<Vec<SequenceScore>>>],
    ) {
        if pack.is_empty() {
            return;
        }
        let groups: Vec<Vec<usize>> = pack
            .iter()
            .map(|&i| (0..items[i].1.len()).collect())
            .collect();
        let trees: Vec<Tree<'_>> = pack
            .iter()
            .zip(&groups)
            .map(|(&i, group)| Tree {
                trunk: &items[i].0,
                continuations: &items[i].1,
                group,
            })
            .collect();
        let mut scores: Vec<Vec<Vec<TokenScore>>> = pack
            .iter()
            .map(|&i| vec![Vec::new(); items[i].1.len()])
            .collect();
        let empty = self.model.new_cache();
        let packed = self.score_trees(&empty, &trees, &mut |tree, i, score| {
            scores[tree][i].push(score)
        });
        for (k, &i) in pack.iter().enumerate() {
            results[i] = Some(match &packed {
                Ok(()) => Ok(scores[k]
                    .iter()
                    .map(|t| SequenceScore::from_tokens(t))
                    .collect()),
                Err(_) => self.score_continuations(&items[i].0, &items[i].1),
            });
        }
    }

    /// Runs each tree after `prefix`, packed into one forward call: the tree's `trunk`, with
    /// every continuation in its `group` branching off the trunk's last token. Trees attend
    /// apart. Calls `emit(tree, continuation, score)` for every continuation token, in order.
    fn score_trees(
        &self,
        prefix: &KvCache,
        trees: &[Tree<'_>],
        emit: &mut dyn FnMut(usize, usize, TokenScore),
    ) -> Result<()> {
        let mut tokens: Vec<u32> = Vec::new();
        let mut parents: Vec<Option<usize>> = Vec::new();
        // The row whose logits score each target: (packed index, tree, continuation, target).
        let mut wanted: Vec<(usize, usize, usize, u32)> = Vec::new();
        for (tree_index, tree) in trees.iter().enumerate() {
            let base = tokens.len();
            tokens.extend_from_slice(tree.trunk);
            parents.extend((0..tree.trunk.len()).map(|t| t.checked_sub(1).map(|p| base + p)));
            let fork = tokens.len() - 1;
            wanted.extend(
                tree.group
                    .iter()
                    .map(|&i| (fork, tree_index, i, tree.continuations[i][0])),
            );
            for &i in tree.group {
                let continuation = &tree.continuations[i];
                let mut parent = fork;
                for t in 0..continuation.len() - 1 {
                    let index = tokens.len();
                    tokens.push(continuation[t]);
                    parents.push(Some(parent));
                    wanted.push((index, tree_index, i, continuation[t + 1]));
                    parent = index;
                }
            }
        }
        // Each distinct row is run through the output head once.
        let mut rows: Vec<usize> = wanted.iter().map(|w| w.0).collect();
        rows.dedup();
        let mut cache = prefix.clone();
        let hidden = self
            .model
            .forward_tree(&tokens, &parents, &mut cache, &rows)?;
        // With a dense output head, all rows at once, a slice of the vocabulary at a time.
        let mut by_row = Vec::with_capacity(wanted.len());
        for &(index, _, _, target) in &wanted {
            let k = rows
                .binary_search(&index)
                .map_err(|_| LocalError::InvalidInput("packed row not computed".into()))?;
            by_row.push((k, target));
        }
        // About 4M logits (16 MB) per slice of the vocabulary: 336 rows (a typical
        // HellaSwag pack) still make ~12k-column products, and peak memory stays low.
        let slice = 4 * 1024 * 1024 / rows.len().max(1);
        if let Some(scores) = self.model.score_rows_dense(&hidden, &by_row, slice)? {
            for (&(_, tree, i, _), score) in wanted.iter().zip(scores) {
                emit(tree, i, score);
            }
            return Ok(());
        }
        // Otherwise logits are materialized `max_logit_rows` at a time (a row is `vocab`
        // floats).
        let mut out = vec![None; wanted.len()];
        let step = self.settings.max_logit_rows.max(1);
        let mut next = 0;
        for start in (0..rows.len()).step_by(step) {
            let n = step.min(rows.len() - start);
            let logits = logits_rows(&self.model.logits(&hidden.narrow(0, start, n)?)?)?;
            // `wanted` is in row order, so each chunk's entries follow the previous ones.
            while next < wanted.len() && wanted[next].0 <= rows[start + n - 1] {
                let (index, _, _, target) = wanted[next];
                let k = rows[start..start + n]
                    .binary_search(&index)
                    .map_err(|_| LocalError::InvalidInput("packed row not computed".into()))?;
                out[next] = Some(row_logprob(&logits[k], target));
                next += 1;
            }
        }
        for (&(_, tree, i, _), score) in wanted.iter().zip(out) {
            let score =
                score.ok_or_else(|| LocalError::InvalidInput("packed row not computed".into()))?;
            emit(tree, i, score);
        }
        Ok(())
    }

    /// Scores a whole token sequence in windows of the context length, the way
    /// lm-evaluation-harness's `loglikelihood_rolling` does: the first window is preceded
    /// by `prefix_token`, each later one by as much of the preceding text as fits.
    pub(crate) fn score_rolling(&self, tokens: &[u32], prefix_token: u32) -> Result<SequenceScore> {
        let max_len = self.settings.max_context;
        let mut all = Vec::with_capacity(tokens.len());
        let mut predicted = 0;
        while predicted < tokens.len() {
            let window_len = (tokens.len() - predicted).min(max_len);
            let end = predicted + window_len;
            let context: Vec<u32> = if predicted == 0 {
                vec![prefix_token]
            } else {
                // As much preceding text as fits: context + window = max_len + 1 tokens.
                tokens[end.saturating_sub(max_len + 1)..predicted].to_vec()
            };
            let target = tokens[predicted..end].to_vec();
            let score = self.score_continuations(&context, &[target])?;
            for s in score {
                all.extend(
                    s.token_logprobs
                        .iter()
                        .zip(&s.top_token_ids)
                        .zip(&s.top_logprobs)
                        .map(|((&logprob, &top_id), &top_logprob)| TokenScore {
                            logprob,
                            greedy: false,
                            top_id,
                            top_logprob,
                        }),
                );
            }
            predicted = end;
        }
        let mut score = SequenceScore::from_tokens(&all);
        score.is_greedy = false;
        Ok(score)
    }

    /// Generates after `prompt`, calling `on_token` with each new token until it breaks,
    /// an end token comes out, `max_tokens` are made, or the context is full.
    pub(crate) fn generate(
        &self,
        prompt: &[u32],
        max_tokens: usize,
        sampling: &SamplingParams,
        end_tokens: &[u32],
        mut on_token: impl FnMut(u32) -> ControlFlow<()>,
    ) -> Result<FinishReason> {
        if prompt.is_empty() {
            return Err(LocalError::InvalidInput("generation needs a prompt".into()));
        }
        let max_context = self.settings.max_context;
        let prompt = &prompt[prompt.len().saturating_sub(max_context)..];
        let mut sampler = Sampler::new(sampling);
        let mut cache = self.model.new_cache();
        let mut hidden = self.prefill(prompt, &mut cache)?;
        for _ in 0..max_tokens {
            let logits = logits_rows(&self.model.logits(&hidden)?)?;
            let token = sampler.sample(&logits[0]);
            if end_tokens.contains(&token) {
                return Ok(FinishReason::EndOfText);
            }
            if on_token(token).is_break() {
                return Ok(FinishReason::Stopped);
            }
            if cache.len() >= max_context {
                return Ok(FinishReason::ContextFull);
            }
            hidden = self.model.forward(&[token], 1, &mut cache, &[0])?;
        }
        Ok(FinishReason::Length)
    }

    /// Runs a prompt of `n_prompt` pseudo-random token ids (seeded, so every run sees the
    /// same ones) and then decodes `n_generate` tokens one by one from an empty context,
    /// feeding back the arg-max, and times both.
    pub(crate) fn speed(&self, n_prompt: usize, n_generate: usize) -> Result<SpeedReport> {
        let vocab = self.model.vocab_size as u64;
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let prompt: Vec<u32> = (0..n_prompt)
            .map(|_| {
                // xorshift64*: any fixed sequence of in-vocabulary ids does.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % vocab) as u32
            })
            .collect();
        let start = std::time::Instant::now();
        if !prompt.is_empty() {
            let mut cache = self.model.new_cache();
            let hidden = self.prefill(&prompt, &mut cache)?;
            logits_rows(&self.model.logits(&hidden)?)?;
        }
        let prompt_s = start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        let mut cache = self.model.new_cache();
        let mut token = prompt.first().copied().unwrap_or(0);
        for _ in 0..n_generate {
            let hidden = self.model.forward(&[token], 1, &mut cache, &[0])?;
            let logits = logits_rows(&self.model.logits(&hidden)?)?;
            token = crate::model::argmax(&logits[0]);
        }
        Ok(SpeedReport {
            n_prompt,
            prompt_s,
            n_generated: n_generate,
            generate_s: start.elapsed().as_secs_f64(),
        })
    }

    /// Runs `tokens` as one sequence into `cache` in bounded chunks and returns the hidden
    /// state of the last position (`[1, hidden]`).
    pub(crate) fn prefill(&self, tokens: &[u32], cache: &mut KvCache) -> Result<Tensor> {
        let chunk = self.settings.max_batch_tokens.max(1);
        let mut last = None;
        for piece in tokens.chunks(chunk) {
            last = Some(self.model.forward(piece, 1, cache, &[piece.len() - 1])?);
        }
        last.ok_or_else(|| LocalError::InvalidInput("nothing to prefill".into()))
    }

    /// Runs each `inputs[i]` after the sequence in `prefix` and scores `targets[i][t]` as
    /// the prediction at `inputs[i][t]`. Inputs are batched (right-padded; padding only
    /// follows real tokens, so causal attention keeps it from affecting them).
    fn score_after(
        &self,
        prefix: &KvCache,
        inputs: &[&[u32]],
        targets: &[&[u32]],
    ) -> Result<Vec<Vec<TokenScore>>> {
        let mut results: Vec<Vec<TokenScore>> = inputs
            .iter()
            .map(|input| Vec::with_capacity(input.len()))
            .collect();
        // Longest first, so that similar lengths share a batch and padding stays small.
        let mut order: Vec<usize> = (0..inputs.len())
            .filter(|&i| !inputs[i].is_empty())
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(inputs[i].len()));
        let budget = self.settings.max_batch_tokens.max(1);
        let mut at = 0;
        while at < order.len() {
            let longest = inputs[order[at]].len();
            let batch_size = (budget / longest).clamp(1, order.len() - at);
            let group = &order[at..at + batch_size];
            self.score_group(prefix, inputs, targets, group, &mut results)?;
            at += batch_size;
        }
        Ok(results)
    }

    fn score_group(
        &self,
        prefix: &KvCache,
        inputs: &[&[u32]],
        targets: &[&[u32]],
        group: &[usize],
        results: &mut [Vec<TokenScore>],
    ) -> Result<()> {
        let batch = group.len();
        let longest = group.iter().map(|&i| inputs[i].len()).max().unwrap_or(0);
        let columns = (self.settings.max_batch_tokens / batch).clamp(1, longest.max(1));
        let mut cache = prefix.clone();
        let mut col = 0;
        while col < longest {
            let width = columns.min(longest - col);
            let mut tokens = Vec::with_capacity(batch * width);
            // (row in this chunk, input index, position in that input)
            let mut wanted = Vec::new();
            for (b, &i) in group.iter().enumerate() {
                for t in col..col + width {
                    match inputs[i].get(t) {
                        Some(&token) => {
                            tokens.push(token);
                            wanted.push((b * width + t - col, i, t));
                        }
                        // Any valid id does as padding: nothing reads its outputs.
                        None => tokens.push(0),
                    }
                }
            }
            let rows: Vec<usize> = wanted.iter().map(|w| w.0).collect();
            let hidden = self.model.forward(&tokens, batch, &mut cache, &rows)?;
            let step = self.settings.max_logit_rows.max(1);
            for (start, piece) in wanted.chunks(step).enumerate() {
                let offset = start * step;
                let logits = self.model.logits(&hidden.narrow(0, offset, piece.len())?)?;
                for (row, &(_, i, t)) in logits_rows(&logits)?.iter().zip(piece) {
                    results[i].push(row_logprob(row, targets[i][t]));
                }
            }
            col += width;
        }
        Ok(())
    }

    /// Greedy next token after `tokens` (used by tests and tools).
    #[cfg(test)]
    pub(crate) fn greedy_next(&self, tokens: &[u32]) -> Result<u32> {
        let mut cache = self.model.new_cache();
        let hidden = self.prefill(tokens, &mut cache)?;
        Ok(crate::model::argmax(
            &logits_rows(&self.model.logits(&hidden)?)?[0],
        ))
    }
}
