//! Checks of a Parquet file that the `parquet` crate (60.1) does not make
//! before it trusts a declared count, each found by the `dataset_parquet`
//! fuzz target.
//!
//! The crate skips a Thrift field it does not know element by element, and a
//! boolean element of a list, set or map is skipped without reading its byte
//! (so the crate also misreads a well-formed one), so a 10-byte list
//! declaring ~2^31 booleans loops 2^31 times: seconds per list, and a 1 KB
//! file holds a hundred lists. In a
//! page header the skip also goes on past the end of the file without an
//! error (`io::copy` of nothing), so any element type loops there. The
//! checks walk the Thrift structures the crate reads the way it reads them
//! (the fields it knows by id, whatever type their header declares; the rest
//! skipped by declared type, at most 64 levels deep) and refuse two things a
//! well-formed file cannot hold, since every element takes at least one byte
//! on the wire, a boolean in a list included:
//!
//! - a list, set or map declaring more elements than bytes follow it;
//! - more skipped elements in all than the walked bytes (the footer, or the
//!   whole file for the page headers), which bounds the crate's work by the
//!   file's size even when each list alone fits (lists of lists of booleans).
//!
//! What is walked:
//! - **The footer** ([`check_footer`]): `FileMetaData` and every structure in
//!   it, before the crate reads it; also a schema element declaring more
//!   children than the schema has elements, and a schema nested deeper than
//!   [`MAX_SCHEMA_DEPTH`].
//! - **Page headers** ([`check_page_headers`]), from each header to the end
//!   of the file, as the crate reads them; also a compressed page declaring
//!   more uncompressed bytes than its codec can expand it to.
//! - **Dictionary pages** ([`check_dictionaries`]).
//!
//! Anything else a walk does not understand, or where the crate itself stops
//! with an error, ends that walk quietly: the crate then reports the file's
//! actual defect itself.

use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;

/// Skips nested deeper than this fail in the crate (its default skip depth).
const MAX_SKIP_DEPTH: u32 = 64;

/// The most a Snappy page may declare it expands to, as a multiple of its
/// compressed size: above Snappy's own bound (~21.3, a 3-byte copy writing
/// 64 bytes), so no valid page is refused.
const SNAPPY_MAX_EXPANSION: i64 = 32;

/// The most levels below its root a schema may nest. The crate builds the schema tree (and later
/// the readers of a row) recursively, one stack frame per level, and has no
/// limit of its own: 10,000 nested groups, an 80 KB file, overflowed a 2 MB
/// thread stack, which aborts the process. Real schemas nest a few levels per
/// list, map or struct; 100 allows over 30 levels of nested lists.
const MAX_SCHEMA_DEPTH: usize = 100;

/// A Parquet file the parquet crate would spend time or memory on in proportion to
/// a declared count, or one whose pages it cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum HostileParquet {
    #[error("{context} {what} declares {n} elements but only {left} bytes follow it")]
    Elements {
        context: &'static str,
        what: &'static str,
        n: u64,
        left: usize,
    },
    #[error(
        "{context} skipped fields declare more elements in all than {within}'s {bytes} bytes can hold"
    )]
    Skipped {
        context: &'static str,
        within: &'static str,
        bytes: usize,
    },
    #[error(
        "a schema element declares {children} children but the schema has {n_elements} elements"
    )]
    Children { children: i64, n_elements: u64 },
    #[error("the schema nests more than {max} levels below its root")]
    SchemaDepth { max: usize },
    #[error(
        "a page of row group {group}, column {column} declares {uncompressed} bytes uncompressed from {compressed} compressed, more than the codec's {max}-fold at most"
    )]
    Expansion {
        group: usize,
        column: usize,
        uncompressed: i64,
        compressed: i64,
        max: i64,
    },
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

/// How the crate reads a field it knows by id, whatever type its header
/// declares.
enum Read {
    /// An integer or enum of any width: one varint.
    Varint,
    /// An `i8`: one byte.
    Byte,
    /// A string or binary: a varint length and that many bytes.
    Binary,
    /// A boolean field: its value is the field header's type, and any other
    /// type is an error.
    Bool,
    /// A double: 8 bytes.
    Double,
    /// A struct: its known fields by id, the rest skipped.
    Struct(&'static [(i16, Read)]),
    /// A union: one field (a known id: read, `None` an empty struct, a single
    /// 0 byte; an unknown id: skipped if the flag says so, else an error),
    /// then the stop field.
    Union(&'static [(i16, Option<Read>)], bool),
    /// A list whose header must declare this element type; each element read so.
    List(u8, &'static Read),
    /// `FileMetaData.schema`: a list of `SchemaElement`s whose `num_children`
    /// is checked against the list's length.
    Schema,
    /// `SchemaElement.num_children`.
    NumChildren,
}

use Read::{Binary, Bool, Byte, Double, Varint};

// The structures of the footer as parquet 60.1 reads them (without its
// `encryption` feature: the encryption fields are unknown, so skipped).
// A field the crate passes over on purpose (ColumnMetaData's
// `path_in_schema` and `key_value_metadata`, RowGroup's
// `total_compressed_size`) is skipped by its declared type like an unknown
// one, so it is left out here.
const TIME_UNIT: Read = Read::Union(&[(1, None), (2, None), (3, None)], false);
const TIME: Read = Read::Struct(&[(1, Bool), (2, TIME_UNIT)]);
const LOGICAL_TYPE: Read = Read::Union(
    &[
        (1, None),
        (2, None),
        (3, None),
        (4, None),
        (5, Some(Read::Struct(&[(1, Varint), (2, Varint)]))),
        (6, None),
        (7, Some(TIME)),
        (8, Some(TIME)),
        (10, Some(Read::Struct(&[(1, Byte), (2, Bool)]))),
        (11, None),
        (12, None),
        (13, None),
        (14, None),
        (15, None),
        (16, Some(Read::Struct(&[(1, Byte)]))),
        (17, Some(Read::Struct(&[(1, Binary)]))),
        (18, Some(Read::Struct(&[(1, Binary), (2, Varint)]))),
        (19, None),
    ],
    true,
);
const SCHEMA_ELEMENT: Read = Read::Struct(&[
    (1, Varint),
    (2, Varint),
    (3, Varint),
    (4, Binary),
    (5, Read::NumChildren),
    (6, Varint),
    (7, Varint),
    (8, Varint),
    (9, Varint),
    (10, LOGICAL_TYPE),
]);
const STATISTICS: Read = Read::Struct(&[
    (1, Binary),
    (2, Binary),
    (3, Varint),
    (4, Varint),
    (5, Binary),
    (6, Binary),
    (7, Bool),
    (8, Bool),
    (9, Varint),
]);
const PAGE_ENCODING_STATS: Read = Read::Struct(&[(1, Varint), (2, Varint), (3, Varint)]);
const SIZE_STATISTICS: Read = Read::Struct(&[
    (1, Varint),
    (2, Read::List(I64, &Varint)),
    (3, Read::List(I64, &Varint)),
]);
const BOUNDING_BOX: Read = Read::Struct(&[
    (1, Double),
    (2, Double),
    (3, Double),
    (4, Double),
    (5, Double),
    (6, Double),
    (7, Double),
    (8, Double),
]);
const GEOSPATIAL_STATISTICS: Read =
    Read::Struct(&[(1, BOUNDING_BOX), (2, Read::List(I32, &Varint))]);
const COLUMN_META_DATA: Read = Read::Struct(&[
    (1, Varint),
    (2, Read::List(I32, &Varint)),
    (4, Varint),
    (5, Varint),
    (6, Varint),
    (7, Varint),
    (9, Varint),
    (10, Varint),
    (11, Varint),
    (12, STATISTICS),
    (13, Read::List(STRUCT, &PAGE_ENCODING_STATS)),
    (14, Varint),
    (15, Varint),
    (16, SIZE_STATISTICS),
    (17, GEOSPATIAL_STATISTICS),
]);
const COLUMN_CHUNK: Read = Read::Struct(&[
    (1, Binary),
    (2, Varint),
    (3, COLUMN_META_DATA),
    (4, Varint),
    (5, Varint),
    (6, Varint),
    (7, Varint),
]);
const SORTING_COLUMN: Read = Read::Struct(&[(1, Varint), (2, Bool), (3, Bool)]);
const ROW_GROUP: Read = Read::Struct(&[
    (1, Read::List(STRUCT, &COLUMN_CHUNK)),
    (2, Varint),
    (3, Varint),
    (4, Read::List(STRUCT, &SORTING_COLUMN)),
    (5, Varint),
    (7, Varint),
]);
const KEY_VALUE: Read = Read::Struct(&[(1, Binary), (2, Binary)]);
const COLUMN_ORDER: Read = Read::Union(&[(1, None), (2, None), (3, None)], true);
const FILE_META_DATA: Read = Read::Struct(&[
    (1, Varint),
    (2, Read::Schema),
    (3, Varint),
    (4, Read::List(STRUCT, &ROW_GROUP)),
    (5, Read::List(STRUCT, &KEY_VALUE)),
    (6, Binary),
    (7, Read::List(STRUCT, &COLUMN_ORDER)),
]);

// The page-header structures the crate reads, without page statistics (as it
// reads them by default: their fields are skipped).
const DATA_PAGE_HEADER: Read = Read::Struct(&[(1, Varint), (2, Varint), (3, Varint), (4, Varint)]);
const INDEX_PAGE_HEADER: Read = Read::Struct(&[]);
const DICTIONARY_PAGE_HEADER: Read = Read::Struct(&[(1, Varint), (2, Varint), (3, Bool)]);
const DATA_PAGE_HEADER_V2: Read = Read::Struct(&[
    (1, Varint),
    (2, Varint),
    (3, Varint),
    (4, Varint),
    (5, Varint),
    (6, Varint),
    (7, Bool),
]);

struct Walker<'a> {
    bytes: &'a [u8],
    at: usize,
    /// What is walked, for messages: "a page header's", "the footer's".
    context: &'static str,
    /// Whether a skip of bytes past the end goes on without an error, as the
    /// crate's skip does when it reads a page header from a `Read`; in the
    /// footer (read from a slice) that is an error.
    lenient_end: bool,
    /// How many more list, set or map elements skips may pass over.
    skips_left: usize,
    /// The bytes the skips share, for the message: what ("the footer") and
    /// how many.
    skips_within: (&'static str, usize),
    /// The length of the schema list being read.
    schema_len: u64,
    /// The `num_children` of the schema element being read, if it has one.
    children: Option<i64>,
}

impl<'a> Walker<'a> {
    fn new(
        bytes: &'a [u8],
        context: &'static str,
        lenient_end: bool,
        skips_within: (&'static str, usize),
    ) -> Self {
        Walker {
            bytes,
            at: 0,
            context,
            lenient_end,
            skips_left: skips_within.1,
            skips_within,
            schema_len: 0,
            children: None,
        }
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn byte(&mut self) -> Walk<u8> {
        let b = *self.bytes.get(self.at).ok_or(Halt::Stop)?;
        self.at += 1;
        Ok(b)
    }

    /// Skips `n` bytes; past the end, either the crate's error or (in a page
    /// header) the crate going on at the end of the input.
    fn advance(&mut self, n: u64) -> Walk<()> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n > self.left() && !self.lenient_end {
            return Err(Halt::Stop);
        }
        self.at += n.min(self.left());
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

    /// A collection's element count as the crate reads it: an unsigned
    /// varint, an error above `i32::MAX`. Refused when more elements are
    /// declared than bytes follow.
    fn count(&mut self, what: &'static str) -> Walk<u64> {
        let n = self.varint()?;
        if n > i32::MAX as u64 {
            return Err(Halt::Stop);
        }
        self.check_count(n, what)
    }

    fn check_count(&self, n: u64, what: &'static str) -> Walk<u64> {
        if n > self.left() as u64 {
            return Err(Halt::Hostile(HostileParquet::Elements {
                context: self.context,
                what,
                n,
                left: self.left(),
            }));
        }
        Ok(n)
    }

    /// One more element passed over by a skip.
    fn skip_one(&mut self) -> Walk<()> {
        let Some(left) = self.skips_left.checked_sub(1) else {
            return Err(Halt::Hostile(HostileParquet::Skipped {
                context: self.context,
                within: self.skips_within.0,
                bytes: self.skips_within.1,
            }));
        };
        self.skips_left = left;
        Ok(())
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

    /// A list or set header as the crate reads one: (element type, count),
    /// booleans as [`BOOL_FALSE`]; a single 0 byte is an empty list of bytes.
    fn list_header(&mut self) -> Walk<(u8, u64)> {
        let header = self.byte()?;
        if header == 0 {
            return Ok((BYTE, 0));
        }
        let element = match header & 0x0f {
            BOOL_TRUE | BOOL_FALSE => BOOL_FALSE,
            0 | 14.. => return Err(Halt::Stop),
            element => element,
        };
        let n = match header >> 4 {
            15 => self.count("list")?,
            short => self.check_count(u64::from(short), "list")?,
        };
        Ok((element, n))
    }

    /// The crate's generic skip of a value of declared type `kind`.
    fn skip(&mut self, kind: u8, depth: u32) -> Walk<()> {
        if depth == 0 {
            return Err(Halt::Stop);
        }
        match kind {
            // A boolean field has no data; neither (wrongly) has a boolean element.
            BOOL_TRUE | BOOL_FALSE => Ok(()),
            BYTE => self.byte().map(drop),
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
                let (element, n) = self.list_header()?;
                for _ in 0..n {
                    self.skip_one()?;
                    self.skip(element, depth - 1)?;
                }
                Ok(())
            }
            MAP => {
                let n = self.count("map")?;
                if n == 0 {
                    return Ok(());
                }
                let types = self.byte()?;
                let (key, value) = (types >> 4, types & 0x0f);
                if !(1..=UUID).contains(&key) || !(1..=UUID).contains(&value) {
                    return Err(Halt::Stop);
                }
                for _ in 0..n {
                    self.skip_one()?;
                    self.skip(key, depth - 1)?;
                    self.skip(value, depth - 1)?;
                }
                Ok(())
            }
            _ => Err(Halt::Stop),
        }
    }

    /// A struct's fields: those in `known` read by id, the rest skipped.
    fn fields(&mut self, known: &[(i16, Read)]) -> Walk<()> {
        let mut last = 0;
        while let Some((kind, id)) = self.field(last)? {
            match known.iter().find(|(known, _)| *known == id) {
                Some((_, how)) => self.read(how, kind)?,
                None => self.skip(kind, MAX_SKIP_DEPTH)?,
            }
            last = id;
        }
        Ok(())
    }

    /// A known value, as the crate reads it; `kind` is the type its field
    /// header (or list header) declares.
    fn read(&mut self, how: &Read, kind: u8) -> Walk<()> {
        match how {
            Varint => self.varint().map(drop),
            Byte => self.byte().map(drop),
            Binary => {
                let len = self.varint()?;
                self.advance(len)
            }
            Bool => match kind {
                BOOL_TRUE | BOOL_FALSE => Ok(()),
                _ => Err(Halt::Stop),
            },
            Double => self.advance(8),
            Read::Struct(known) => self.fields(known),
            Read::Union(variants, skips_unknown) => {
                let (kind, id) = self.field(0)?.ok_or(Halt::Stop)?;
                match variants.iter().find(|(variant, _)| *variant == id) {
                    Some((_, Some(how))) => self.read(how, kind)?,
                    Some((_, None)) => {
                        if self.byte()? != 0 {
                            return Err(Halt::Stop);
                        }
                    }
                    None if *skips_unknown => self.skip(kind, MAX_SKIP_DEPTH)?,
                    None => return Err(Halt::Stop),
                }
                match self.field(id)? {
                    None => Ok(()),
                    Some(_) => Err(Halt::Stop),
                }
            }
            Read::List(element, how) => {
                let (declared, n) = self.list_header()?;
                if declared != *element {
                    return Err(Halt::Stop);
                }
                for _ in 0..n {
                    self.read(how, *element)?;
                }
                Ok(())
            }
            Read::Schema => {
                let (declared, n) = self.list_header()?;
                if declared != STRUCT {
                    return Err(Halt::Stop);
                }
                self.schema_len = n;
                // The crate builds the schema tree from the flat list
                // recursively, one stack frame per level: the children still
                // to come of each group open at this element.
                let mut open: Vec<i64> = Vec::new();
                for _ in 0..n {
                    if open.len() > MAX_SCHEMA_DEPTH {
                        return Err(Halt::Hostile(HostileParquet::SchemaDepth {
                            max: MAX_SCHEMA_DEPTH,
                        }));
                    }
                    self.children = None;
                    self.read(&SCHEMA_ELEMENT, STRUCT)?;
                    match self.children {
                        // An error in the crate.
                        Some(children) if children < 0 => return Err(Halt::Stop),
                        Some(children) if children > 0 => open.push(children),
                        // A leaf: it ends, and with it each group whose last child it is.
                        _ => {
                            while let Some(left) = open.last_mut() {
                                *left -= 1;
                                if *left > 0 {
                                    break;
                                }
                                open.pop();
                            }
                        }
                    }
                }
                Ok(())
            }
            Read::NumChildren => {
                let children = self.i32()?;
                if children > 0 && children as u64 > self.schema_len {
                    return Err(Halt::Hostile(HostileParquet::Children {
                        children,
                        n_elements: self.schema_len,
                    }));
                }
                self.children = Some(children);
                Ok(())
            }
        }
    }

    /// A PageHeader; its uncompressed and compressed page sizes.
    fn page_header(&mut self) -> Walk<(i64, i64)> {
        let mut uncompressed = None;
        let mut compressed = None;
        let mut last = 0;
        while let Some((kind, id)) = self.field(last)? {
            match id {
                1 | 4 => {
                    self.i32()?;
                }
                2 => uncompressed = Some(self.i32()?),
                3 => compressed = Some(self.i32()?),
                5 => self.read(&DATA_PAGE_HEADER, kind)?,
                6 => self.read(&INDEX_PAGE_HEADER, kind)?,
                7 => self.read(&DICTIONARY_PAGE_HEADER, kind)?,
                8 => self.read(&DATA_PAGE_HEADER_V2, kind)?,
                _ => self.skip(kind, MAX_SKIP_DEPTH)?,
            }
            last = id;
        }
        uncompressed.zip(compressed).ok_or(Halt::Stop)
    }
}

/// Walks the whole footer (`FileMetaData`) as the crate will read it, before
/// it does (see the module docs). Besides the counts, refuses a schema
/// element declaring more children than the schema has elements: parquet 60.1
/// reserves `Vec::with_capacity(num_children)` while building the schema
/// (`schema_from_array_helper`), so a 600-byte file declaring ~8 × 10^8
/// children asked for 6.4 GB (an abort where the memory is not there); and a
/// schema nested deeper than [`MAX_SCHEMA_DEPTH`] (a stack overflow there).
pub(crate) fn check_footer(file: &[u8]) -> Result<(), HostileParquet> {
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
    let footer = &file[start..tail_at];
    let mut walker = Walker::new(footer, "the footer's", false, ("the footer", footer.len()));
    match walker.read(&FILE_META_DATA, STRUCT) {
        Err(Halt::Hostile(why)) => Err(why),
        _ => Ok(()),
    }
}

/// Walks the page headers of every column chunk (see the module docs).
pub(crate) fn check_page_headers(
    file: &[u8],
    metadata: &ParquetMetaData,
) -> Result<(), HostileParquet> {
    // The headers of a well-formed file lie apart, so all their skipped
    // elements together fit in the file's bytes.
    let mut skips_left = file.len();
    for (group_at, group) in metadata.row_groups().iter().enumerate() {
        for (column_at, column) in group.columns().iter().enumerate() {
            // The crate reserves a compressed page's declared uncompressed
            // size before decompressing it (`decode_page`:
            // `Vec::with_capacity(uncompressed_page_size)`, up to 2 GB from a
            // 600-byte file). Snappy, the one codec compiled in (the crate
            // refuses the others before reading a page), expands at most
            // ~21 times (a 3-byte copy writes up to 64 bytes).
            let max_expansion = match column.compression() {
                Compression::SNAPPY => Some(SNAPPY_MAX_EXPANSION),
                _ => None,
            };
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
                let mut walker = Walker::new(
                    &file[at..],
                    "a page header's",
                    true,
                    ("the file", file.len()),
                );
                walker.skips_left = skips_left;
                let walked = walker.page_header();
                skips_left = walker.skips_left;
                match walked {
                    Ok((uncompressed, compressed)) => {
                        if let Some(max) = max_expansion
                            && uncompressed > compressed.saturating_mul(max)
                        {
                            return Err(HostileParquet::Expansion {
                                group: group_at,
                                column: column_at,
                                uncompressed,
                                compressed,
                                max,
                            });
                        }
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
