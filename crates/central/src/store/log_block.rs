//! The raw message log as the store keeps it: the frames of one group commit in one block,
//! compressed with zstd, appended and never updated. A pile's frames are found through one
//! small row per pile and block (`message_block_piles`, with a bit per action the pile's
//! frames in the block carry), so that the relational indexes hold no frame.
//!
//! A block: the byte 1, then a zstd frame of the block's first time (zigzag LEB128) and its
//! rows in order, each: the pile (length and bytes), its time after the first (zigzag), a byte
//! of flags (bit 0 sent by the central, 1 an action follows, 2 a message id follows, 3 the
//! frame is the empty answer `[3,"<message id>",{}]` and is not kept), the action, the message
//! id and the frame, each as a length and its bytes. A row reads back exactly as it was given.

use ocpp::Action;

use super::LogRow;

const FORMAT: u8 = 1;
/// zstd's level: its fast end, a few per cent of the central's CPU at most.
const LEVEL: i32 = 3;
/// A block's rows are numbered in the log's order as its id times this plus their place.
pub const ROWS_PER_BLOCK: i64 = 1 << 20;

const OUT: u8 = 1;
const ACTION: u8 = 2;
const MESSAGE_ID: u8 = 4;
const EMPTY_ANSWER: u8 = 8;

/// The bit of an action in a pile's row of a block: its place among the 39 actions, and the
/// last bit for frames without a known action.
pub fn action_bit(action: Option<&str>) -> i64 {
    let place = action.and_then(|a| Action::ALL.iter().position(|k| k.as_str() == a));
    1i64 << place.unwrap_or(62)
}

/// A stored block could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("message log block {block} is damaged: {why}")]
pub struct DamagedBlock {
    block: i64,
    why: String,
}

fn push_len(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn push_signed(out: &mut Vec<u8>, n: i64) {
    push_len(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn push_text(out: &mut Vec<u8>, text: &str) {
    push_len(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// The frame an empty answer to this message id is, as the central writes it.
fn empty_answer(message_id: &str) -> String {
    let id = serde_json::Value::from(message_id).to_string();
    format!("[3,{id},{{}}]")
}

/// The block of these rows (in the log's order) and the first time among them.
pub fn encode(rows: &[LogRow]) -> (Vec<u8>, i64) {
    let first = rows.iter().map(|r| r.time).min().unwrap_or(0);
    let mut raw = Vec::with_capacity(rows.iter().map(|r| r.frame.len() + 32).sum());
    push_signed(&mut raw, first);
    for row in rows {
        push_text(&mut raw, &row.pile);
        push_signed(&mut raw, row.time - first);
        let mut flags = if row.direction == "in" { 0 } else { OUT };
        if row.action.is_some() {
            flags |= ACTION;
        }
        if let Some(id) = &row.message_id {
            flags |= MESSAGE_ID;
            if row.frame == empty_answer(id) {
                flags |= EMPTY_ANSWER;
            }
        }
        raw.push(flags);
        if let Some(action) = &row.action {
            push_text(&mut raw, action);
        }
        if let Some(id) = &row.message_id {
            push_text(&mut raw, id);
        }
        if flags & EMPTY_ANSWER == 0 {
            push_text(&mut raw, &row.frame);
        }
    }
    let mut block = vec![FORMAT];
    // Compressing into memory fails only where memory does.
    block.extend(zstd::bulk::compress(&raw, LEVEL).expect("zstd compresses into memory"));
    (block, first)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn len(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn signed(&mut self) -> Option<i64> {
        let n = self.len()?;
        Some((n >> 1) as i64 ^ -((n & 1) as i64))
    }

    fn text(&mut self) -> Option<String> {
        let n = usize::try_from(self.len()?).ok()?;
        let end = self.at.checked_add(n)?;
        let raw = self.bytes.get(self.at..end)?;
        self.at = end;
        String::from_utf8(raw.to_vec()).ok()
    }
}

/// The rows of block `id`, in the log's order, each numbered (`seq`) by its place.
pub fn decode(id: i64, block: &[u8]) -> Result<Vec<LogRow>, DamagedBlock> {
    let damaged = |why: &str| DamagedBlock {
        block: id,
        why: why.to_owned(),
    };
    let (&format, compressed) = block.split_first().ok_or_else(|| damaged("empty"))?;
    if format != FORMAT {
        return Err(damaged(&format!("unknown format {format}")));
    }
    let raw = zstd::stream::decode_all(compressed).map_err(|e| damaged(&e.to_string()))?;
    let mut reader = Reader { bytes: &raw, at: 0 };
    let first = reader.signed().ok_or_else(|| damaged("no first time"))?;
    let mut rows = Vec::new();
    while reader.at < raw.len() {
        let row = (|| {
            let pile = reader.text()?;
            let time = first.checked_add(reader.signed()?)?;
            let flags = reader.byte()?;
            let action = if flags & ACTION != 0 {
                Some(reader.text()?)
            } else {
                None
            };
            let message_id = if flags & MESSAGE_ID != 0 {
                Some(reader.text()?)
            } else {
                None
            };
            let frame = match (&message_id, flags & EMPTY_ANSWER != 0) {
                (Some(id), true) => empty_answer(id),
                _ => reader.text()?,
            };
            Some(LogRow {
                pile,
                time,
                seq: id * ROWS_PER_BLOCK + rows.len() as i64,
                direction: if flags & OUT != 0 { "out" } else { "in" },
                action,
                message_id,
                frame,
            })
        })()
        .ok_or_else(|| damaged(&format!("row {} is cut short", rows.len())))?;
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pile: &str, time: i64, direction: &'static str, id: &str, frame: &str) -> LogRow {
        LogRow {
            pile: pile.into(),
            time,
            seq: 0,
            direction,
            action: frame
                .contains("MeterValues")
                .then(|| "MeterValues".to_owned()),
            message_id: Some(id.into()),
            frame: frame.into(),
        }
    }

    #[test]
    fn rows_read_back_exactly_in_order_and_numbered_by_their_place() {
        let rows = vec![
            row(
                "CP1",
                1_000,
                "in",
                "a\"1",
                r#"[2,"a\"1","MeterValues",{"connectorId":1}]"#,
            ),
            row("CP2", 990, "out", "a\"1", r#"[3,"a\"1",{}]"#),
            row("CP1", 1_005, "out", "x", r#"[3, "x", {}]"#),
            LogRow {
                pile: "ÇP3".into(),
                time: -5,
                seq: 0,
                direction: "in",
                action: None,
                message_id: None,
                frame: "not json at all \u{FFFD}".into(),
            },
        ];
        let (block, first) = encode(&rows);
        assert_eq!(first, -5);
        let back = decode(7, &block).unwrap();
        let seqs: Vec<i64> = back.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, [7 << 20, (7 << 20) + 1, (7 << 20) + 2, (7 << 20) + 3]);
        let unnumbered: Vec<LogRow> = back.into_iter().map(|r| LogRow { seq: 0, ..r }).collect();
        assert_eq!(unnumbered, rows);
        assert!(decode(1, &encode(&[]).0).unwrap().is_empty());
    }

    #[test]
    fn similar_frames_take_a_fraction_of_their_size() {
        let rows: Vec<LogRow> = (0..200)
            .map(|i| {
                row(
                    &format!("FLEET-{i:05}"),
                    1_000 + i,
                    "in",
                    &format!("tx-1-{i}"),
                    &format!(
                        r#"[2,"tx-1-{i}","MeterValues",{{"connectorId":1,"transactionId":{i},"meterValue":[{{"timestamp":"2026-12-08T00:23:31.{:03}Z","sampledValue":[{{"value":"{}","context":"Sample.Periodic","format":"Raw","measurand":"Current.Import","location":"Outlet","unit":"A"}},{{"value":"{}","context":"Sample.Periodic","format":"Raw","measurand":"Energy.Active.Import.Register","location":"Outlet","unit":"Wh"}}]}}]}}]"#,
                        i % 1000,
                        i % 32,
                        i * 7
                    ),
                )
            })
            .collect();
        let raw: usize = rows.iter().map(|r| r.frame.len()).sum();
        let (block, _) = encode(&rows);
        assert!(block.len() * 5 < raw, "{} of {raw}", block.len());
    }

    #[test]
    fn a_damaged_block_is_an_error_not_a_panic() {
        let (block, _) = encode(&[row("CP1", 1, "in", "1", "[2,\"1\",\"Heartbeat\",{}]")]);
        for cut in 0..block.len() {
            let _ = decode(1, &block[..cut]);
        }
        assert!(decode(1, &[]).is_err());
        assert!(decode(1, &[9, 1, 2]).is_err());
        let mut raw = Vec::new();
        push_signed(&mut raw, 0);
        push_text(&mut raw, "CP1");
        let cut_short = [vec![FORMAT], zstd::bulk::compress(&raw, 1).unwrap()].concat();
        assert!(decode(1, &cut_short).is_err());
    }

    #[test]
    fn each_action_has_its_bit_and_the_rest_share_one() {
        assert_eq!(action_bit(Some(Action::ALL[0].as_str())), 1);
        assert_ne!(
            action_bit(Some("MeterValues")),
            action_bit(Some("Heartbeat"))
        );
        assert_eq!(action_bit(None), 1 << 62);
        assert_eq!(action_bit(Some("Nonsense")), 1 << 62);
        assert!(Action::ALL.len() < 62);
    }
}
