//! Hash chains and signed checkpoints, and their verification.
//!
//! Record `n` of a writer carries `hash = SHA-256("lakeshare-audit-v1" ‖ writer ‖ n ‖
//! hash(n-1) ‖ body)`; the first record links to 64 zeros. A checkpoint is an Ed25519 signature
//! over (writer, n, hash(n), time). An attacker who edits, deletes, inserts or reorders records
//! and recomputes every later hash still cannot make the signed checkpoint at or after that
//! position match, and cannot truncate a chain below its last checkpoint.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AuditError;

/// The hash a chain starts from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Writer (one per serving process).
    pub writer: String,
    /// Position in the writer's chain, from 1.
    pub seq: i64,
    /// Time (ms).
    pub at_ms: i64,
    /// Recipient or admin (indexed copy of the body's principal).
    pub principal: Option<String>,
    /// Share (indexed copy).
    pub share: Option<String>,
    /// Table (indexed copy).
    pub table: Option<String>,
    /// Canonical JSON of the event.
    pub body: String,
    /// Hash of the previous record.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

/// A signed chain head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Writer.
    pub writer: String,
    /// Position covered.
    pub seq: i64,
    /// Hash of the record at `seq`.
    pub hash: String,
    /// Time (ms).
    pub at_ms: i64,
    /// Id of the signing key (hex prefix of SHA-256 of the public key).
    pub key_id: String,
    /// Ed25519 signature, base64.
    pub signature: String,
}

/// Which indexed column of `r` disagrees with its body, if any.
fn column_mismatch(r: &AuditRecord) -> Option<&'static str> {
    let Ok(e) = serde_json::from_str::<super::event::AuditEvent>(&r.body) else {
        return Some("content (not an audit event)");
    };
    if e.at_ms != r.at_ms {
        Some("time")
    } else if e.principal != r.principal {
        Some("recipient")
    } else if e.share != r.share {
        Some("share")
    } else if e.table != r.table {
        Some("table")
    } else {
        None
    }
}

/// The hash of a record from its parts.
pub fn link_hash(writer: &str, seq: i64, prev_hash: &str, body: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        "lakeshare-audit-v1",
        writer,
        &seq.to_string(),
        prev_hash,
        body,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

fn checkpoint_message(writer: &str, seq: i64, hash: &str, at_ms: i64) -> Vec<u8> {
    format!("lakeshare-audit-checkpoint-v1\n{writer}\n{seq}\n{hash}\n{at_ms}").into_bytes()
}

/// The checkpoint signing key (an Ed25519 seed kept outside the database).
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.key_id())
    }
}

impl SigningKey {
    /// From a base64 32-byte seed.
    pub fn from_seed_b64(text: &str) -> Result<Self, AuditError> {
        let seed = STANDARD
            .decode(text.trim())
            .map_err(|_| AuditError::Invalid("the audit signing key is not base64".into()))?;
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).map_err(|_| {
            AuditError::Invalid("the audit signing key must be a 32-byte seed".into())
        })?;
        Ok(Self { pair })
    }

    /// A new random key: (seed base64, key).
    pub fn generate() -> Result<(String, Self), AuditError> {
        let mut seed = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut seed);
        let b64 = STANDARD.encode(seed);
        let key = Self::from_seed_b64(&b64)?;
        Ok((b64, key))
    }

    /// The public key, base64.
    pub fn public_b64(&self) -> String {
        STANDARD.encode(self.pair.public_key().as_ref())
    }

    /// The key id.
    pub fn key_id(&self) -> String {
        key_id(self.pair.public_key().as_ref())
    }

    /// Signs a chain head.
    pub fn checkpoint(&self, writer: &str, seq: i64, hash: &str, at_ms: i64) -> Checkpoint {
        let sig = self
            .pair
            .sign(&checkpoint_message(writer, seq, hash, at_ms));
        Checkpoint {
            writer: writer.to_owned(),
            seq,
            hash: hash.to_owned(),
            at_ms,
            key_id: self.key_id(),
            signature: STANDARD.encode(sig.as_ref()),
        }
    }
}

fn key_id(public: &[u8]) -> String {
    hex::encode(Sha256::digest(public))[..16].to_owned()
}

/// One problem found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Writer.
    pub writer: String,
    /// First bad position (or the checkpoint's position).
    pub seq: i64,
    /// What is wrong.
    pub reason: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Chains seen.
    pub writers: usize,
    /// Records seen.
    pub records: usize,
    /// Checkpoints whose signature and hash verified.
    pub checkpoints_verified: usize,
    /// Records after the last verified checkpoint of their chain (not yet covered).
    pub uncovered: usize,
    /// Problems, first per chain first.
    pub problems: Vec<Problem>,
}

/// Verifies every chain and checkpoint. With `public_key` (base64), checkpoints must be signed
/// by it; without, only the plain chain is checked (tampering with recomputed hashes is then
/// invisible, and the report says so through `checkpoints_verified == 0`).
pub fn verify(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    public_key: Option<&str>,
) -> Report {
    let mut report = Report::default();
    let public = public_key.and_then(|k| STANDARD.decode(k.trim()).ok());
    let mut chains: BTreeMap<&str, Vec<&AuditRecord>> = BTreeMap::new();
    for r in records {
        chains.entry(r.writer.as_str()).or_default().push(r);
    }
    let mut cps: BTreeMap<&str, Vec<&Checkpoint>> = BTreeMap::new();
    for c in checkpoints {
        cps.entry(c.writer.as_str()).or_default().push(c);
        chains.entry(c.writer.as_str()).or_default();
    }
    report.writers = chains.len();
    for (writer, mut chain) in chains {
        chain.sort_by_key(|r| r.seq);
        report.records += chain.len();
        let bad = |seq: i64, reason: String| Problem {
            writer: writer.to_owned(),
            seq,
            reason,
        };
        // 1. The plain chain.
        let mut prev = GENESIS.to_owned();
        for (i, r) in chain.iter().enumerate() {
            let want_seq = i as i64 + 1;
            if r.seq != want_seq {
                report.problems.push(bad(
                    want_seq,
                    format!("record {want_seq} is missing (found {} next)", r.seq),
                ));
                break;
            }
            if r.prev_hash != prev {
                report
                    .problems
                    .push(bad(r.seq, "does not link to the previous record".into()));
                break;
            }
            if link_hash(writer, r.seq, &r.prev_hash, &r.body) != r.hash {
                report
                    .problems
                    .push(bad(r.seq, "its content does not match its hash".into()));
                break;
            }
            // The indexed columns (what exports and reports select on) must say what the
            // hashed body says.
            if let Some(field) = column_mismatch(r) {
                report.problems.push(bad(
                    r.seq,
                    format!("its indexed {field} differs from its hashed content"),
                ));
                break;
            }
            prev = r.hash.clone();
        }
        // 2. The signed checkpoints.
        let mut covered = 0;
        let mut list = cps.remove(writer).unwrap_or_default();
        list.sort_by_key(|c| c.seq);
        for c in list {
            let Some(public) = &public else { break };
            if key_id(public) != c.key_id {
                report.problems.push(bad(
                    c.seq,
                    format!("checkpoint signed by another key ({})", c.key_id),
                ));
                continue;
            }
            let sig_ok = STANDARD.decode(&c.signature).is_ok_and(|sig| {
                UnparsedPublicKey::new(&ED25519, public)
                    .verify(
                        &checkpoint_message(&c.writer, c.seq, &c.hash, c.at_ms),
                        &sig,
                    )
                    .is_ok()
            });
            if !sig_ok {
                report
                    .problems
                    .push(bad(c.seq, "checkpoint signature is invalid".into()));
                continue;
            }
            match chain.iter().find(|r| r.seq == c.seq) {
                None => report.problems.push(bad(
                    c.seq,
                    format!(
                        "the chain was truncated: the signed checkpoint at {} has no record",
                        c.seq
                    ),
                )),
                Some(r) if r.hash != c.hash => report.problems.push(bad(
                    covered + 1,
                    format!(
                        "records after {covered} up to {} were altered, inserted, removed or \
                         reordered (the signed checkpoint at {} does not match)",
                        c.seq, c.seq
                    ),
                )),
                Some(_) => {
                    report.checkpoints_verified += 1;
                    covered = c.seq;
                }
            }
        }
        report.uncovered += chain.iter().filter(|r| r.seq > covered).count();
    }
    report
        .problems
        .sort_by(|a, b| (&a.writer, a.seq).cmp(&(&b.writer, b.seq)));
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_body(id: &str, at_ms: i64) -> String {
        serde_json::to_string(&super::super::event::AuditEvent {
            id: id.to_owned(),
            at_ms,
            ..Default::default()
        })
        .unwrap_or_default()
    }

    fn chain(writer: &str, n: i64) -> Vec<AuditRecord> {
        let mut out = Vec::new();
        let mut prev = GENESIS.to_owned();
        for seq in 1..=n {
            let body = event_body(&format!("e{seq}"), seq);
            let hash = link_hash(writer, seq, &prev, &body);
            out.push(AuditRecord {
                writer: writer.into(),
                seq,
                at_ms: seq,
                principal: None,
                share: None,
                table: None,
                body,
                prev_hash: prev.clone(),
                hash: hash.clone(),
            });
            prev = hash;
        }
        out
    }

    type Attack = Box<dyn Fn(&mut Vec<AuditRecord>)>;

    /// Recomputes every hash (the attacker's "hard way").
    fn rechain(records: &mut [AuditRecord]) {
        let mut prev = GENESIS.to_owned();
        for (i, r) in records.iter_mut().enumerate() {
            r.seq = i as i64 + 1;
            r.prev_hash = prev.clone();
            r.hash = link_hash(&r.writer, r.seq, &r.prev_hash, &r.body);
            prev = r.hash.clone();
        }
    }

    fn setup() -> (Vec<AuditRecord>, Vec<Checkpoint>, String) {
        let (_, key) = SigningKey::generate().unwrap_or_else(|e| unreachable!("{e}"));
        let records = chain("w1", 10);
        let cps = vec![
            key.checkpoint("w1", 5, &records[4].hash, 5),
            key.checkpoint("w1", 10, &records[9].hash, 10),
        ];
        (records, cps, key.public_b64())
    }

    #[test]
    fn an_untouched_log_verifies() {
        let (r, c, pk) = setup();
        let rep = verify(&r, &c, Some(&pk));
        assert!(rep.problems.is_empty(), "{:?}", rep.problems);
        assert_eq!(
            (rep.records, rep.checkpoints_verified, rep.uncovered),
            (10, 2, 0)
        );
    }

    #[test]
    fn plain_tampering_is_caught_by_the_chain() {
        let (mut r, c, pk) = setup();
        r[6].body = "{\"n\":700}".into();
        let rep = verify(&r, &c, Some(&pk));
        assert_eq!(rep.problems[0].seq, 7, "{:?}", rep.problems);
    }

    #[test]
    fn moving_an_indexed_column_is_caught() {
        let (mut r, c, pk) = setup();
        // Exports select on the time column: moving it out of a range must not verify.
        r[4].at_ms += 86_400_000;
        let rep = verify(&r, &c, Some(&pk));
        assert_eq!(rep.problems[0].seq, 5, "{:?}", rep.problems);
        assert!(
            rep.problems[0].reason.contains("time"),
            "{:?}",
            rep.problems
        );
        let (mut r, c, pk) = setup();
        r[2].principal = Some("someone-else".into());
        let rep = verify(&r, &c, Some(&pk));
        assert_eq!(rep.problems[0].seq, 3, "{:?}", rep.problems);
    }

    #[test]
    fn every_attack_done_the_hard_way_is_caught_by_the_checkpoints() {
        let attacks: Vec<(&str, Attack)> = vec![
            ("edit", Box::new(|r| r[6].body = event_body("forged", 7))),
            (
                "delete",
                Box::new(|r| {
                    r.remove(6);
                }),
            ),
            (
                "insert",
                Box::new(|r| {
                    let mut extra = r[6].clone();
                    extra.body = event_body("inserted", 7);
                    r.insert(7, extra);
                }),
            ),
            ("swap", Box::new(|r| r.swap(6, 7))),
            ("truncate", Box::new(|r| r.truncate(8))),
        ];
        for (name, attack) in attacks {
            let (mut r, c, pk) = setup();
            attack(&mut r);
            rechain(&mut r);
            let plain = verify(&r, &[], None);
            assert!(
                plain.problems.is_empty(),
                "{name}: the plain chain looks valid"
            );
            let rep = verify(&r, &c, Some(&pk));
            assert!(!rep.problems.is_empty(), "{name} not detected");
            assert!(
                rep.problems.iter().all(|p| p.seq > 5 && p.seq <= 10),
                "{name}: first bad position must be after the intact checkpoint: {:?}",
                rep.problems
            );
        }
    }

    #[test]
    fn forged_or_foreign_checkpoints_are_refused() {
        let (r, mut c, pk) = setup();
        c[1].hash = r[8].hash.clone();
        let rep = verify(&r, &c, Some(&pk));
        assert!(
            rep.problems.iter().any(|p| p.reason.contains("signature")),
            "{:?}",
            rep.problems
        );
        let (_, other) = SigningKey::generate().unwrap_or_else(|e| unreachable!("{e}"));
        let (r, _, _) = setup();
        let foreign = vec![other.checkpoint("w1", 10, &r[9].hash, 10)];
        let rep = verify(&r, &foreign, Some(&pk));
        assert!(
            rep.problems
                .iter()
                .any(|p| p.reason.contains("another key"))
        );
    }
}
