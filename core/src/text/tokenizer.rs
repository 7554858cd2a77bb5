//! CLIP's byte-level BPE tokenizer as A1111 runs it on SD 1.x (transformers' slow
//! `CLIPTokenizer`, the same BPE as the original CLIP's `SimpleTokenizer` but with its own
//! text cleaning and special-token handling), with the MIT-licensed vocabulary `bpe_simple_vocab_16e6.txt.gz` built into the
//! binary so tokenizing never needs a file from the user.
//!
//! Ids: 0..256 are the 256 bytes (as printable stand-in characters), 256..512 the same bytes
//! ending a word (`</w>`), 512..49406 one per merge in file order, then `<|startoftext|>` and
//! `<|endoftext|>`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use flate2::read::GzDecoder;
use std::io::Read;

use super::clean::clean_text;
use super::pretokenize::{pretokenize, SPECIAL_WORDS};

/// `<|startoftext|>`, put before every 75-token chunk.
pub const BOS: u32 = 49406;
/// `<|endoftext|>`, put after every chunk and used as padding (SD 1.x has no separate pad id).
pub const EOS: u32 = 49407;
/// `,</w>`: where A1111 prefers to break a long prompt into chunks.
pub const COMMA: u32 = 267;
/// Number of ids in the vocabulary.
pub const VOCAB_SIZE: usize = 49408;

const VOCAB_GZ: &[u8] = include_bytes!("../../assets/bpe_simple_vocab_16e6.txt.gz");
/// Merges used from the file: the vocabulary has room for 49152 - 256 bytes - 2 specials.
const MERGE_COUNT: usize = 49152 - 256 - 2;
/// Words longer than this are not cached (a pasted blob should not fill memory).
const MAX_CACHED_WORD: usize = 64;
/// The cache is emptied when it holds this many words, which bounds its memory.
const MAX_CACHE_ENTRIES: usize = 20_000;

/// The loaded vocabulary: id ↔ token text and the merge table.
struct Vocab {
    /// Token text per id (byte stand-ins, `</w>` marking a word's end).
    tokens: Vec<String>,
    /// Id of each byte, and of the same byte ending a word at `+ 256`.
    byte_ids: [u32; 256],
    /// Byte that each stand-in character represents.
    char_bytes: HashMap<char, u8>,
    /// (left id, right id) → (rank, merged id); a lower rank merges first.
    merges: HashMap<(u32, u32), (u32, u32)>,
    /// Already encoded words.
    cache: Mutex<HashMap<String, Vec<u32>>>,
}

/// GPT-2's reversible byte → character map: printable Latin-1 bytes stand for themselves,
/// the rest are shifted above U+0100 so that no token contains whitespace or controls.
/// Returned in vocabulary order (which is not byte order).
fn byte_chars() -> Vec<(u8, char)> {
    let mut printable: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut pairs: Vec<(u8, char)> = printable.iter().map(|&b| (b, char::from(b))).collect();
    let mut next = 256u32;
    for b in 0..=255u8 {
        if !printable.contains(&b) {
            printable.push(b);
            pairs.push((b, char::from_u32(next).unwrap_or('\u{FFFD}')));
            next += 1;
        }
    }
    pairs
}

impl Vocab {
    fn load() -> Vocab {
        let mut text = String::new();
        // The asset is part of the binary and checked by tests; a failure here is a build
        // defect, not bad user input.
        GzDecoder::new(VOCAB_GZ)
            .read_to_string(&mut text)
            .expect("embedded CLIP vocabulary is a valid gzip of UTF-8 text");
        let merge_lines: Vec<(&str, &str)> = text
            .split('\n')
            .skip(1)
            .take(MERGE_COUNT)
            .map(|line| {
                let mut parts = line.split_whitespace();
                let left = parts.next().unwrap_or("");
                (left, parts.next().unwrap_or(""))
            })
            .collect();

        let byte_chars = byte_chars();
        let mut tokens: Vec<String> = byte_chars.iter().map(|&(_, c)| c.to_string()).collect();
        tokens.extend(byte_chars.iter().map(|&(_, c)| format!("{c}</w>")));
        tokens.extend(merge_lines.iter().map(|(l, r)| format!("{l}{r}")));
        tokens.extend(SPECIAL_WORDS.iter().map(|s| s.to_string()));

        // Later entries win on duplicate text, as in the reference's dict construction.
        let ids: HashMap<&str, u32> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let mut merges = HashMap::with_capacity(merge_lines.len());
        for (rank, (left, right)) in merge_lines.iter().enumerate() {
            let (Some(&l), Some(&r), Some(&m)) = (
                ids.get(left),
                ids.get(right),
                ids.get(format!("{left}{right}").as_str()),
            ) else {
                continue;
            };
            merges.insert((l, r), (rank as u32, m));
        }

        let mut byte_ids = [0u32; 256];
        let mut char_bytes = HashMap::with_capacity(256);
        for (id, &(b, c)) in byte_chars.iter().enumerate() {
            byte_ids[b as usize] = id as u32;
            char_bytes.insert(c, b);
        }
        Vocab {
            tokens,
            byte_ids,
            char_bytes,
            merges,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn get() -> &'static Vocab {
        static VOCAB: OnceLock<Vocab> = OnceLock::new();
        VOCAB.get_or_init(Vocab::load)
    }

    /// BPE of one pre-tokenized word: start from its bytes (the last one marked as ending the
    /// word) and repeatedly merge every occurrence of the lowest-ranked adjacent pair.
    fn encode_word(&self, word: &str) -> Vec<u32> {
        match word {
            w if w == SPECIAL_WORDS[0] => return vec![BOS],
            w if w == SPECIAL_WORDS[1] => return vec![EOS],
            _ => {}
        }
        let mut symbols: Vec<u32> = word.bytes().map(|b| self.byte_ids[b as usize]).collect();
        if let Some(last) = symbols.last_mut() {
            *last += 256;
        }
        loop {
            let best = symbols
                .windows(2)
                .filter_map(|pair| {
                    let (rank, merged) = self.merges.get(&(pair[0], pair[1]))?;
                    Some((*rank, (pair[0], pair[1]), *merged))
                })
                .min_by_key(|(rank, _, _)| *rank);
            let Some((_, (left, right), merged)) = best else {
                break;
            };
            let mut next = Vec::with_capacity(symbols.len());
            let mut i = 0;
            while i < symbols.len() {
                if i + 1 < symbols.len() && symbols[i] == left && symbols[i + 1] == right {
                    next.push(merged);
                    i += 2;
                } else {
                    next.push(symbols[i]);
                    i += 1;
                }
            }
            symbols = next;
        }
        symbols
    }

    fn encode_word_cached(&self, word: &str) -> Vec<u32> {
        if word.len() > MAX_CACHED_WORD {
            return self.encode_word(word);
        }
        if let Ok(cache) = self.cache.lock() {
            if let Some(ids) = cache.get(word) {
                return ids.clone();
            }
        }
        let ids = self.encode_word(word);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= MAX_CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(word.to_string(), ids.clone());
        }
        ids
    }
}

/// Token ids of `text` as A1111's tokenizer (transformers' slow `CLIPTokenizer`) produces
/// them, without BOS/EOS. The exact texts `<|startoftext|>` and `<|endoftext|>` are cut out
/// first and become their ids; each piece between them is cleaned on its own (ftfy,
/// whitespace, lowercase), split into words, and each word BPE-encoded.
pub fn tokenize(text: &str) -> Vec<u32> {
    let vocab = Vocab::get();
    let mut ids = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let special = SPECIAL_WORDS
            .iter()
            .zip([BOS, EOS])
            .filter_map(|(word, id)| rest.find(word).map(|at| (at, word.len(), id)))
            .min_by_key(|&(at, _, _)| at);
        let (piece, after) = match special {
            Some((at, len, _)) => (&rest[..at], &rest[at + len..]),
            None => (rest, ""),
        };
        ids.extend(
            pretokenize(&clean_text(piece))
                .iter()
                .flat_map(|word| vocab.encode_word_cached(word)),
        );
        if let Some((_, _, id)) = special {
            ids.push(id);
        }
        rest = after;
    }
    ids
}

/// The vocabulary entry of `id` as stored (byte stand-in characters, `</w>` at a word end),
/// or `None` for an id outside the vocabulary.
pub fn token_text(id: u32) -> Option<&'static str> {
    Vocab::get().tokens.get(id as usize).map(String::as_str)
}

/// Readable text of a sequence of ids, as CLIP's `decode`: bytes reassembled (invalid UTF-8
/// shown as U+FFFD), each word end shown as a space. Unknown ids are skipped.
pub fn decode(ids: &[u32]) -> String {
    let vocab = Vocab::get();
    let mut bytes = Vec::new();
    for token in ids.iter().filter_map(|&id| vocab.tokens.get(id as usize)) {
        let (body, word_end) = match token.strip_suffix("</w>") {
            Some(body) => (body, true),
            None => (token.as_str(), false),
        };
        // Specials are spelled in printable ASCII, whose stand-ins are the bytes themselves.
        bytes.extend(body.chars().filter_map(|c| vocab.char_bytes.get(&c)));
        if word_end {
            bytes.push(b' ');
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Ids from open_clip's SimpleTokenizer / REFERENCE.md §7.
    #[test]
    fn photo_of_a_cat() {
        assert_eq!(tokenize("a photo of a cat"), [320, 1125, 539, 320, 2368]);
    }

    /// Ids from transformers 4.30.2's slow `CLIPTokenizer` loaded with `from_pretrained`
    /// (ftfy 6.3.1): curly quotes, HTML references, full-width forms, ligatures,
    /// NFC, U+0345 (matched by no regex branch), Greek final sigma, dotted I, long s in a
    /// contraction, letter-like numbers, specials inside text, controls, emoji, Indic marks.
    #[test]
    fn matches_reference_on_unicode_and_markup() {
        let cases: &[(&str, &[u32])] = &[
            (
                "\u{201C}quoted\u{201D} it\u{2019}s &amp;amp; &EACUTE;t\u{E9}",
                &[257, 27706, 257, 585, 568, 261, 3459, 39694],
            ),
            (
                "\u{FF21}\u{FF22}\u{FF23}\u{3000}\u{FF11}\u{FF12} \u{FB01}ne \u{133} \u{149}",
                &[5334, 272, 273, 3797, 72, 329, 262, 333],
            ),
            (
                "e\u{301} a\u{345}b \u{1FB3}",
                &[4166, 320, 321, 157, 122, 367],
            ),
            (
                "\u{39F}\u{394}\u{39F}\u{3A3} \u{130}stanbul '\u{17F}",
                &[
                    138, 123, 138, 112, 138, 123, 139, 480, 328, 16384, 11231, 6, 129, 379,
                ],
            ),
            (
                "\u{216B}\u{24B6}\u{B2}\u{BD} \u{663}",
                &[158, 227, 375, 27400, 494, 41175, 33613, 149, 352],
            ),
            (
                "x<|endoftext|>y !<|endoftext|>",
                &[343, 49407, 344, 256, 49407],
            ),
            ("a < b &amp; c", &[320, 283, 321, 261, 6259, 282, 322]),
            (
                "\u{1B}[31mred\u{7} \u{FEFF}zero\u{200B}width",
                &[736, 5848, 9844, 23571],
            ),
            (
                "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467} \u{2764}\u{FE0F}",
                &[25023, 26304, 964, 356, 1752],
            ),
            (
                "&ampx &notit; &#150; &#0;",
                &[261, 3521, 343, 261, 10686, 339, 282, 1224, 39802],
            ),
            (
                "\u{928}\u{92E}\u{938}\u{94D}\u{924}\u{947} \u{6771}\u{4EAC}",
                &[
                    3124, 101, 48254, 28505, 19389, 27263, 25130, 48338, 21078, 361,
                ],
            ),
        ];
        for (text, ids) in cases {
            assert_eq!(tokenize(text), *ids, "{text:?}");
        }
    }

    #[test]
    fn vocabulary_layout() {
        assert_eq!(token_text(BOS), Some("<|startoftext|>"));
        assert_eq!(token_text(EOS), Some("<|endoftext|>"));
        assert_eq!(token_text(COMMA), Some(",</w>"));
        assert_eq!(token_text(0), Some("!"));
        assert_eq!(token_text(511), Some("\u{143}</w>"));
        assert_eq!(token_text(512), Some("in"));
        assert_eq!(token_text(49405), Some("jekyll</w>"));
        assert_eq!(token_text(VOCAB_SIZE as u32), None);
        assert_eq!(Vocab::get().tokens.len(), VOCAB_SIZE);
        assert_eq!(tokenize("<|startoftext|>x<|endoftext|>"), [BOS, 343, EOS]);
    }

    #[test]
    fn decode_round_trip() {
        assert_eq!(
            decode(&tokenize("A photo, of a CAT")),
            "a photo , of a cat "
        );
        assert_eq!(
            decode(&tokenize("caf\u{E9} \u{65E5}")),
            "caf\u{E9} \u{65E5} "
        );
    }
}
