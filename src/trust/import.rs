//! Reading spam complaint files: the FTC's Do-Not-Call reported calls data (one row per
//! complaint, the caller in `Company_Phone_Number`), or a plain `number,reports[,label]`
//! list. Reports are counted per number, numbers normalized as lookups normalize them.

use std::collections::HashMap;
use std::io::Read;

use crate::domain::{MAX_SPAM_LABEL, PhoneNumber, Region};
use crate::store::spam::Reported;

/// The layouts `cidgate spam import --format` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpamFormat {
    /// The FTC's Do-Not-Call complaint data: a header naming `Company_Phone_Number`
    /// (and `Subject`, kept as the label); each row is one report.
    FtcDnc,
    /// A header line, then `number,reports[,label]` (reports empty or absent: 1).
    Csv,
}

/// The FTC column holding the reported caller's number.
pub const FTC_NUMBER_COLUMN: &str = "Company_Phone_Number";
/// The FTC column kept as the label (the call's topic).
pub const FTC_LABEL_COLUMN: &str = "Subject";

/// What a file held.
#[derive(Debug, Default)]
pub struct ReadFile {
    /// Numbers with their reports, each number once.
    pub numbers: Vec<Reported>,
    /// Data rows read.
    pub rows: u64,
    /// Rows whose number is no phone number (withheld, empty, junk): left out.
    pub unusable: u64,
}

/// Reads `input`, counting reports per normalized number; numbers with fewer than
/// `min_reports` are left out. A malformed file is an error naming the line.
pub fn read(
    input: impl Read,
    format: SpamFormat,
    region: Region,
    min_reports: u32,
) -> anyhow::Result<ReadFile> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let headers = reader.headers()?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (number_at, reports_at, label_at) = match format {
        SpamFormat::FtcDnc => {
            let Some(number) = column(FTC_NUMBER_COLUMN) else {
                anyhow::bail!(
                    "the header names no {FTC_NUMBER_COLUMN} column: not the FTC's Do-Not-Call \
                     complaint data (for number,reports[,label] use --format csv)"
                );
            };
            (number, None, column(FTC_LABEL_COLUMN))
        }
        SpamFormat::Csv => (0, Some(1), Some(2)),
    };
    let mut counted: HashMap<String, (u64, Option<String>)> = HashMap::new();
    let mut file = ReadFile::default();
    for record in reader.records() {
        let record = record?;
        let line = record.position().map_or(0, |p| p.line());
        file.rows += 1;
        let reports = match reports_at
            .and_then(|i| record.get(i))
            .filter(|r| !r.is_empty())
        {
            None => 1,
            Some(raw) => raw.parse::<u32>().map_err(|_| {
                anyhow::anyhow!("line {line}: reports `{raw}` is not a whole number of reports")
            })?,
        };
        let raw = record.get(number_at).unwrap_or_default();
        let Ok(number) = PhoneNumber::parse(raw, region) else {
            file.unusable += 1;
            continue;
        };
        let label = label_at
            .and_then(|i| record.get(i))
            .filter(|l| !l.is_empty())
            .map(|l| l.chars().take(MAX_SPAM_LABEL).collect::<String>());
        let entry = counted.entry(number.as_str().to_owned()).or_default();
        entry.0 += u64::from(reports);
        if label.is_some() {
            entry.1 = label;
        }
    }
    file.numbers = counted
        .into_iter()
        .filter(|(_, (reports, _))| *reports >= u64::from(min_reports))
        .map(|(number, (reports, label))| Reported {
            number,
            reports: i32::try_from(reports).unwrap_or(i32::MAX),
            label,
        })
        .collect();
    file.numbers.sort_by(|a, b| a.number.cmp(&b.number));
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us() -> Region {
        Region::parse("US").unwrap()
    }

    #[test]
    fn ftc_rows_are_counted_per_number_whatever_its_format() {
        let file = "Company_Phone_Number,Created_Date,Violation_Date,Consumer_City,Consumer_State,Consumer_Area_Code,Subject,Recorded_Message_Or_Robocall\n\
            5550001111,2026-11-30 10:00:00,2026-11-29 09:00:00,Austin,Texas,512,Reducing your debt,Y\n\
            (555) 000-1111,2026-11-30 11:00:00,2026-11-29 10:00:00,Dallas,Texas,214,Vacation & timeshares,N\n\
            5550002222,2026-11-30 12:00:00,2026-11-29 11:00:00,Waco,Texas,254,,Y\n\
            ,2026-11-30 12:00:00,2026-11-29 11:00:00,Waco,Texas,254,,Y\n";
        let read = read(file.as_bytes(), SpamFormat::FtcDnc, us(), 1).unwrap();
        assert_eq!((read.rows, read.unusable), (4, 1));
        assert_eq!(
            read.numbers,
            [
                Reported {
                    number: "+15550001111".into(),
                    reports: 2,
                    label: Some("Vacation & timeshares".into())
                },
                Reported {
                    number: "+15550002222".into(),
                    reports: 1,
                    label: None
                },
            ]
        );
    }

    #[test]
    fn min_reports_leaves_rare_numbers_out_and_bad_counts_name_their_line() {
        let file = "number,reports,label\n5550001111,3,robocall\n5550002222\n5550003333,,x\n";
        let read = read(file.as_bytes(), SpamFormat::Csv, us(), 2).unwrap();
        assert_eq!(read.numbers.len(), 1);
        assert_eq!(read.numbers[0].reports, 3);
        let bad = "number,reports\n5550001111,many\n";
        let err = super::read(bad.as_bytes(), SpamFormat::Csv, us(), 1).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let not_ftc = "number,reports\n5550001111,1\n";
        let err = super::read(not_ftc.as_bytes(), SpamFormat::FtcDnc, us(), 1).unwrap_err();
        assert!(err.to_string().contains(FTC_NUMBER_COLUMN), "{err}");
    }
}
