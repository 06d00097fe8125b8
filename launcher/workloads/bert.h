/**
 * @file launcher/workloads/bert.h
 * @brief A BERT encoder read from a Hugging Face / sentence-transformers model folder
 *        (config.json, model.safetensors, tokenizer.json), run only through session ops:
 *        embeddings + LayerNorm, N post-LN encoder blocks, mean pooling over the attention
 *        mask, L2 normalisation (when the folder's modules.json asks for it).
 */
#ifndef HETRUN_WORKLOADS_BERT_H
#define HETRUN_WORKLOADS_BERT_H

#include <stdint.h>

#include "exec/session.h"
#include "text/wordpiece.h"

#define HETRUN_BERT_MAX_LAYERS 64

/** config.json, plus the sentence-transformers settings around it. */
typedef struct hetrun_bert_config {
    int64_t vocab, hidden, layers, heads, intermediate, max_positions, type_vocab;
    double ln_eps;
    int gelu_tanh;   /**< hidden_act gelu_new / gelu_pytorch_tanh; else erf GELU */
    int64_t max_seq; /**< sentence_bert_config.json max_seq_length, else the tokenizer's
                          truncation, else max_positions; at most max_positions */
    int normalize;   /**< modules.json has a Normalize module (or there is no modules.json) */
    char prefix[16]; /**< "" or "bert.": how tensor names start in the file */
} hetrun_bert_config;

typedef struct hetrun_bert {
    hetrun_bert_config cfg;
    hetrun_wordpiece *tok;
    hetrun_dtype dtype;  /**< compute and weight dtype (F32, BF16 or F16) */
    int fused_attention; /**< ATTENTION_FORWARD; else batched GEMMs + softmax per sentence */
    int per_sentence;    /**< fused attention as one op per sentence straight on the packed
                              rows (host-memory backends); else on a gathered padded copy */
    int64_t max_tokens;  /**< batch x sequence the activation buffers hold */
    int64_t max_batch;
    hetrun_buffer *params; /**< every weight, each region 256-byte aligned */
    uint64_t params_bytes;
    hetrun_buffer *act; /**< activations, ids, lengths, pooled output */
    uint64_t act_bytes;
    /* byte offsets into params */
    uint64_t word, pos, emb_g, emb_b; /* pos: position + token type 0 rows */
    struct {
        uint64_t qkv_w, qkv_b, o_w, o_b, ln1_g, ln1_b, i_w, i_b, f_w, f_b, ln2_g, ln2_b;
    } layer[HETRUN_BERT_MAX_LAYERS];
    /* byte offsets into act: x .. ff hold the packed rows (real tokens only); qkv_pad and
     * ctx_pad the padded batch x seq layout attention runs on unless per_sentence (in ff and
     * tmp, idle during attention) */
    uint64_t x, qkv, ctx, tmp, ff, lse, qkv_pad, ctx_pad, scores, key_bias;
    uint64_t ids, pos_ids, mask, pad_src, unpad_src, pool_w, pooled;
    int32_t *stage;  /**< host staging: ids, positions, mask, pad_src, unpad_src (max_tokens
                          each) */
    void *pool_host; /**< host staging: pooling weights (max_batch x max_tokens, model dtype) */
    void *bias_host; /**< host staging: key bias, 0 or -inf (max_tokens x max_seq, dtype) */
} hetrun_bert;

/**
 * Reads the folder's configuration: config.json (a BERT with absolute positions and GELU),
 * 1_Pooling/config.json (mean pooling), modules.json, sentence_bert_config.json. Every
 * refusal names the file and key. Returns 0 or -1 (err).
 */
int hetrun_bert_read_config(const char *dir, const hetrun_wordpiece *tok, hetrun_bert_config *c,
                            char *err, size_t err_len);

/**
 * Loads the folder `dir` onto the session's device in `dtype`: tokenizer, config, every
 * weight from model.safetensors (names and shapes checked against the config), and
 * activation buffers for up to `max_batch` sentences of up to `max_seq` tokens (0: the
 * model's length). Every token-wise op (embeddings, projections, MLP, LayerNorms, pooling)
 * runs on the batch's real tokens only, packed back to back. Attention runs as the fused
 * ATTENTION_FORWARD op when `fused_attention` is set (on the cpu backend one op per sentence
 * on the packed rows; elsewhere one op with a key-padding mask on the rows gathered into the
 * padded batch x seq layout), else per head as two batched GEMMs over the padded sentences
 * and a softmax, padded keys masked by a -inf bias the first GEMM adds (ops every backend has
 * tuned today).
 * Returns 0 or -1 (s->error names the file, the tensor or the op).
 */
int hetrun_bert_create(hetrun_session *s, hetrun_bert *m, const char *dir, hetrun_dtype dtype,
                       int fused_attention, int64_t max_batch, int64_t max_seq);

/**
 * Embeds `batch` tokenized sentences: ids is batch x seq (row-major; entries past lens[b] are
 * not read), lens[b] the real tokens of row b (1..seq). Writes batch x hidden fp32 embeddings to
 * `out` (host). Returns 0 or -1 (s->error).
 */
int hetrun_bert_embed(hetrun_session *s, hetrun_bert *m, const int32_t *ids, const int32_t *lens,
                      int64_t batch, int64_t seq, float *out);

/** Frees device buffers and the tokenizer (safe on a partly created model). */
void hetrun_bert_destroy(hetrun_session *s, hetrun_bert *m);

#endif
