//! Checks of a Parquet file that the `parquet` crate (60.1) does not make
//! before it trusts a declared length, each found by the `dataset_parquet`
//! fuzz target:
//!
//! - **Page headers.** The crate skips unknown Thrift fields of a page header
//!   element by element without noticing the end of the input: skipping a
//!   list declared to hold 2^31 booleans or doubles at the end of a column
//!   chunk loops 2^31 times (12 s per list on this machine; a 1 KB file holds
//!   hundreds of them). [`check_page_headers`] walks every page header the way
//!   the crate reads it (the fields it knows by id, whatever type they declare;
//!   the rest skipped by their declared type; from the header to the end of
//!   the file, as the crate reads, skipping past the end without an error as
//!   it does) and refuses a list, set or map declaring more elements than
//!   bytes are left, since every element takes at least one byte.
//! - **Dictionary pages.** See [`check_dictionaries`].
//!
//! Anything else a walk does not understand ends the walk of that column
//! chunk quietly: the crate then reports the file's actual defect itself.

use parquet::file::metadata::ParquetMetaData;

/// Skips nested deeper than this fail in the crate (its default skip depth).
const MAX_SKIP_DEPTH: u32 = 64;

/// A Parquet file the parquet crate would spend time or memory on in proportion to
/// a declared count, or one whose pages it cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostileParquet {
    #[error("{context} {what} declares {n} elements but {left} bytes are left in the file")]
    Elements {
        context: &'static str,
        what: String,
        n: u64,
        left: usize,
    },
    #[error(
        "a schema element declares {children} children but the schema has {n_elements} elements"
    )]
    Children { children: i64, n_elements: u64 },
    #[error(
        "a dictionary page of row group {group}, column {column} declares {num_values} values in {bytes} bytes"
    )]
    Dictionary {
        group: usize,
        column: usize,
        num_values: u32,
        bytes: usize,
    },
    /// The parquet crate's own error while reading the pages.
    #[error("{0}")]
    Pages(String),
}

/// Why a walk ended early.
enum Halt {
    /// The crate would spend time or memory in proportion to a declared count.
    Hostile(HostileParquet),
    /// Something else the crate will report (or ignore) itself.
    Stop,
}

type Walk<T> = Result<T, Halt>;

// Compact-protocol type ids (thrift-compact-protocol.md).
const BOOL_TRUE: u8 = 1;
const BOOL_FALSE: u8 = 2;
const BYTE: u8 = 3;
const I16: u8 = 4;
const I32: u8 = 5;
const I64: u8 = 6;
const DOUBLE: u8 = 7;
const BINARY: u8 = 8;
const LIST: u8 = 9;
const SET: u8 = 10;
const MAP: u8 = 11;
const STRUCT: u8 = 12;
/// The crate also accepts Thrift's UUID type (16 bytes).
const UUID: u8 = 13;

struct Walker<'a> {
    bytes: &'a [u8],
    at: usize,
    /// What is walked, for messages: "a page header's", "the footer's".
    context: &'static str,
}

impl Walker<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Walk<u8> {
        let b = *self.bytes.get(self.at).ok_or(Halt::Stop)?;
        self.at += 1;
        Ok(b)
    }

    /// Skips `n` bytes, or to the end: the crate's skip copies what is there
    /// and goes on without an error at the end of the input.
    fn advance(&mut self, n: u64) -> Walk<()> {
        let n = usize::try_from(n).unwrap_or(usize::MAX).min(self.left());
        self.at += n;
        Ok(())
    }

    /// A varint as the crate reads one: any number of bytes, the value's bits
    /// wrapping (`wrapping_shl`), ended only by a byte without its top bit.
    fn varint(&mut self) -> Walk<u64> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f).wrapping_shl(shift);
            if b & 0x80 == 0 {
                return Ok(value);
            }
            shift = shift.wrapping_add(7);
        }
    }

    fn zigzag(&mut self) -> Walk<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// An i32 (and an enum) as the crate reads one: zigzag, cut to 32 bits.
    fn i32(&mut self) -> Walk<i64> {
        Ok(i64::from(self.zigzag()? as i32))
    }

    /// A declared element count, refused when the elements cannot fit.
    fn count(&mut self, declared: i64, what: &str) -> Walk<u64> {
        let Ok(n) = u64::try_from(declared) else {
            return Ok(0); // the crate loops `0..size`: a negative size is empty
        };
        if n > self.left() as u64 {
            return Err(Halt::Hostile(HostileParquet::Elements {
                context: self.context,
                what: what.to_string(),
                n,
                left: self.left(),
            }));
        }
        Ok(n)
    }

    /// A field header: `None` at the stop field, else (type, id). Ids are
    /// i16s, as in the crate: a delta past `i16::MAX` is an error there.
    fn field(&mut self, last_id: i16) -> Walk<Option<(u8, i16)>> {
        let header = self.byte()?;
        let kind = header & 0x0f;
        if kind == 0 {
            return Ok(None);
        }
        if kind > UUID {
            return Err(Halt::Stop);
        }
        let delta = i16::from(header >> 4);
        let id = if delta != 0 {
            last_id.checked_add(delta).ok_or(Halt::Stop)?
        } else {
            self.zigzag()? as i16
        };
        Ok(Some((kind, id)))
    }

    /// A list or set header as the crate reads one: (element type, count); an
    /// empty list is a single 0 byte. A count longer than the bytes left is
    /// refused (see [`Walker::count`]).
    fn list_header(&mut self, what: &str) -> Walk<(u8, u64)> {
        let header = self.byte()?;
        if header == 0 {
            return Ok((0, 0));
        }
        let element = header & 0x0f;
        if element == 0 || element > UUID {
            return Err(Halt::Stop);
        }
        let short = i64::from(header >> 4);
        // The crate keeps the low 32 bits of a long count, as an i32.
        let declared = if short == 15 {
            i64::from(self.varint()? as u32 as i32)
        } else {
            short
        };
        Ok((element, self.count(declared, what)?))
    }

    /// The crate's generic skip of a value of declared type `kind`.
    fn skip(&mut self, kind: u8, depth: u32) -> Walk<()> {
        if depth == 0 {
            return Err(Halt::Stop);
        }
        match kind {
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.advance(1),
            I16 | I32 | I64 => self.varint().map(drop),
            DOUBLE => self.advance(8),
            UUID => self.advance(16),
            BINARY => {
                let len = self.varint()?;
                self.advance(len)
            }
            STRUCT => {
                while let Some((kind, _)) = self.field(0)? {
                    self.skip(kind, depth - 1)?;
                }
                Ok(())
            }
            LIST | SET => {
                let (element, n) = self.list_header("list")?;
                for _ in 0..n {
                    self.skip(element, depth - 1)?;
                }
                Ok(())
            }
            MAP => {
                let declared = i64::try_from(self.varint()?).map_err(|_| Halt::Stop)?;
                if declared > i64::from(i32::MAX) {
                    return Err(Halt::Stop);
                }
                let n = self.count(declared, "map")?;
                if n == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                for _ in 0..n {
                    self.skip(types >> 4, depth - 1)?;
                    self.skip(types & 0x0f, depth - 1)?;
                }
                Ok(())
            }
            _ => Err(Halt::Stop),
        }
    }

    /// A struct whose fields are all i32s or booleans the crate reads by id
    /// (`known`), the rest skipped: DataPageHeader (statistics, field 5, is
    /// skipped: the crate reads page headers without statistics),
    /// DictionaryPageHeader, DataPageHeaderV2, IndexPageHeader.
    fn simple_struct(&mut self, known_i32: &[i16], known_bool: &[i16]) -> Walk<()> {
        let mut last = 0;
        while let Some((kind, id)) = self.field(last)? {
            if known_i32.contains(&id) {
                self.i32()?;
            } else if known_bool.contains(&id) {
                if !matches!(kind, BOOL_TRUE | BOOL_FALSE) {
                    return Err(Halt::Stop);
                }
            } else {
                self.skip(kind, MAX_SKIP_DEPTH)?;
            }
            last = id;
        }
        Ok(())
    }

    /// A PageHeader; its compressed page size.
    fn page_header(&mut self) -> Walk<i64> {
        let mut compressed = None;
        let mut last = 0;
        while let Some((kind, id)) = self.field(last)? {
            match id {
                1 | 2 | 4 => {
                    self.i32()?;
                }
                3 => compressed = Some(self.i32()?),
                5 => self.simple_struct(&[1, 2, 3, 4], &[])?,
                6 => self.simple_struct(&[], &[])?,
                7 => self.simple_struct(&[1, 2], &[3])?,
                8 => self.simple_struct(&[1, 2, 3, 4, 5, 6], &[7])?,
                _ => self.skip(kind, MAX_SKIP_DEPTH)?,
            }
            last = id;
        }
        compressed.ok_or(Halt::Stop)
    }
}

/// Refuses a footer whose schema has an element declaring more children than
/// the schema has elements. parquet 60.1 reserves `Vec::with_capacity(num_children)`
/// while building the schema (`schema_from_array_helper`), so a 600-byte file
/// declaring ~8 × 10^8 children asked for 6.4 GB (an abort where the memory is
/// not there). Runs before the crate reads the footer. The walk reads the
/// schema's elements by field id as the crate does, except the `LogicalType`
/// union (field 10), which it skips by its declared type: for a well-formed
/// file that is the same, so no valid file is refused; a crafted one that
/// makes the two readings differ is not guaranteed to be caught.
pub(crate) fn check_schema(file: &[u8]) -> Result<(), HostileParquet> {
    let Some(tail_at) = file.len().checked_sub(8) else {
        return Ok(());
    };
    let tail = &file[tail_at..];
    if &tail[4..] != b"PAR1" {
        return Ok(());
    }
    let declared = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    let Some(start) = tail_at.checked_sub(declared) else {
        return Ok(());
    };
    let mut walker = Walker {
        bytes: &file[start..tail_at],
        at: 0,
        context: "the footer's",
    };
    match walker.file_metadata_schema() {
        Err(Halt::Hostile(why)) => Err(why),
        _ => Ok(()),
    }
}

impl Walker<'_> {
    /// FileMetaData up to and through its schema (field 2).
    fn file_metadata_schema(&mut self) -> Walk<()> {
        let mut last = 0;
        while let Some((kind, id)) = self.field(last)? {
            match id {
                1 => {
                    self.i32()?;
                }
                2 => return self.schema_elements(),
                _ => self.skip(kind, MAX_SKIP_DEPTH)?,
            }
            last = id;
        }
        Ok(())
    }

    fn schema_elements(&mut self) -> Walk<()> {
        let (_, n_elements) = self.list_header("schema list")?;
        for _ in 0..n_elements {
            let mut last = 0;
            while let Some((kind, id)) = self.field(last)? {
                match id {
                    1 | 2 | 3 | 6 | 7 | 8 | 9 => {
                        self.i32()?;
                    }
                    4 => {
                        let len = self.varint()?;
                        self.advance(len)?;
                    }
                    5 => {
                        let children = self.i32()?;
                        if children > 0 && children as u64 > n_elements {
                            return Err(Halt::Hostile(HostileParquet::Children {
                                children,
                                n_elements,
                            }));
                        }
                    }
                    _ => self.skip(kind, MAX_SKIP_DEPTH)?,
                }
                last = id;
            }
        }
        Ok(())
    }
}

/// Walks the page headers of every column chunk (see the module docs).
pub(crate) fn check_page_headers(
    file: &[u8],
    metadata: &ParquetMetaData,
) -> Result<(), HostileParquet> {
    for group in metadata.row_groups() {
        for column in group.columns() {
            let start = column
                .dictionary_page_offset()
                .unwrap_or_else(|| column.data_page_offset());
            let (Ok(start), Ok(len)) = (
                usize::try_from(start),
                usize::try_from(column.compressed_size()),
            ) else {
                continue;
            };
            let end = start.saturating_add(len).min(file.len());
            let mut at = start;
            while at < end {
                // The crate reads a page header from the file's bytes from
                // `at` to the end of the file, not of the chunk: so does the walk.
                let mut walker = Walker {
                    bytes: &file[at..],
                    at: 0,
                    context: "a page header's",
                };
                match walker.page_header() {
                    Ok(compressed) => {
                        let Ok(compressed) = usize::try_from(compressed) else {
                            break;
                        };
                        at = at.saturating_add(walker.at).saturating_add(compressed);
                    }
                    Err(Halt::Hostile(why)) => return Err(why),
                    Err(Halt::Stop) => break,
                }
            }
        }
    }
    Ok(())
}

/// Refuses a dictionary page that declares more values than its bytes can
/// hold. The crate sizes the decoded dictionary from the page header's
/// `num_values` (`Vec::resize`, every slot written), so a 600-byte file
/// declaring ~800 million values made it fill 13 GB before decoding any. A
/// PLAIN value takes at least one byte (a bit, for booleans), so
/// `num_values ≤ 8 × bytes` bounds the dictionary by the page's own size. The
/// pages are read once here, headers and (decompressed) bytes only, before the
/// rows are decoded; run after [`check_page_headers`].
pub(crate) fn check_dictionaries(
    reader: &parquet::file::serialized_reader::SerializedFileReader<bytes::Bytes>,
) -> Result<(), HostileParquet> {
    use parquet::column::page::Page;
    use parquet::file::reader::FileReader;
    for group in 0..reader.num_row_groups() {
        let pages_error =
            |err: parquet::errors::ParquetError| HostileParquet::Pages(err.to_string());
        let row_group = reader.get_row_group(group).map_err(pages_error)?;
        for column in 0..row_group.num_columns() {
            let mut pages = row_group
                .get_column_page_reader(column)
                .map_err(pages_error)?;
            while let Some(page) = pages.get_next_page().map_err(pages_error)? {
                if let Page::DictionaryPage {
                    buf, num_values, ..
                } = &page
                    && *num_values as usize > buf.len().saturating_mul(8)
                {
                    return Err(HostileParquet::Dictionary {
                        group,
                        column,
                        num_values: *num_values,
                        bytes: buf.len(),
                    });
                }
            }
        }
    }
    Ok(())
}
