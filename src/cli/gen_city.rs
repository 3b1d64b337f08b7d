//! `pooltrack gen --persons N [--prevalence P] [--seed S] [--pool-share F]
//! [--pool-size K] [--pool-sizes K1,K2,...] [--ct-model] [--blank-optional F]
//! [--ids numbered|resident] [--population] [--incidents] --out DIR`

use std::path::PathBuf;

use pooltrack::synth::{self, GenConfig, PersonIds, incidents};

use super::progress::Bar;

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Writes collections.csv (the pooled stage), results.csv, retest_collections.csv (a single
tube for everyone in a positive pool), retest_results.csv, truth.csv (the infected) and
summary.json. The same arguments always give the same files. --population adds
population.csv (for `ingest population` and `coverage`); --blank-optional F leaves the
optional fields of a share F of the rows blank, as many labs send them; --ids resident
writes person ids as a city's residents' are (district, birth date, sequence, in no
order), where the default numbers them in row order.

--pool-sizes 5,10,20 mixes pool sizes: sampling site s (2,500 persons each) pools
K[s mod n] persons to a tube, the way a city's zones use different sizes.

--ct-model draws Ct values from viral load and pool dilution instead of the perfect
assay: each infected person's Ct is normal (mean 26, sd 5, clipped to 12-40); a tube
of m swabs reads -log2(sum of 2^-Ct / m) (one infected person in a k-pool: Ct + log2 k)
plus normal noise (sd 0.5); a reading at or above 40 is negative, so a pool diluted
past the cut-off is missed and its members are not recalled. ct_truth.csv records
each infected person's Ct, first-stage tube, the tube's true Ct and shift, and whether
it read positive; summary.json counts missed_pools and missed_singles.

With --incidents (cities of 7,501 to 2,000,000 persons) the round also carries the
incidents a round report must show, and the files change:
  population.csv          new: the register, person,district,community,group; every
                          collected person but one (the unregistered person) plus 0.5 %
                          registered people who got no tube (the untested)
  results.csv             new columns sample_type,ct_ic,received_at; each plate gets a
                          negative_control and a positive_control row; one plate fails
                          (its negative control amplifies) and lab L4 reports every tube
                          26-30 h after its swab, past the 24 h deadline; one pool of
                          uninfected people is reported positive (the discordant pool)
  retest_collections.csv  also the discordant pool's members (single tubes)
  retest_results.csv      as results.csv, with their negative retests
  incidents.json          new: the failed plate and its tubes, the late lab, the
                          discordant pool and its members, the unregistered person and
                          the untested
  summary.json            counts include the discordant pool; \"incidents\": true
For pooltrack audit (lab_audit in incidents.json): a lab whose negative pools, 5 % of
them and at least 25, are reported positive and retest negative (more retests in
retest_*.csv); a lab reporting up to 400 pools within half an hour (faster than
testdata/audit_plan.toml's instruments); one positive pool recalled 90-150 min after its
report, every other within the hour.
Without --incidents the files are exactly as above.

--rounds N (2 to 10) writes N rounds of the same city for health codes across rounds,
one folder each (R1/, R2/, ...), each holding the files of a plain round made with seed
S + k - 1 and every time moved (k - 1) x --round-gap-hours later (default 24); beside
them population.csv, the register with a group column (every 25th person cold_chain,
every 10th of the rest lab_staff), and rounds.json: each round's first and last swab and
last result, and the persons staged to miss R2 (one in a thousand, and one lab_staff
person) with before_third_round, a minute before R3's first swab, when those without a
group have had no negative for over 48 h. Ingest each folder as its own round:
  pooltrack gen --persons 20000 --rounds 3 --round-gap-hours 30 --out city
  pooltrack ingest population city/population.csv
  pooltrack ingest collections city/R1/collections.csv city/R1/retest_collections.csv --round R1
  pooltrack ingest results city/R1/results.csv city/R1/retest_results.csv   (and R2, R3)
  pooltrack export health-codes --as-of \"$(jq -r .before_third_round city/rounds.json)\"")]
pub struct Args {
    /// Persons in the city.
    #[arg(long)]
    persons: u64,
    /// Share of people infected.
    #[arg(long, default_value_t = 0.001)]
    prevalence: f64,
    /// Random seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Share of people pooled (the rest get single tubes).
    #[arg(long, default_value_t = 0.95)]
    pool_share: f64,
    /// Persons per pool tube (5, 10 or 20 are the validated sizes).
    #[arg(long, default_value_t = 10)]
    pool_size: u8,
    /// Pool sizes by sampling site, comma-separated (e.g. 5,10,20): site s uses the
    /// s-th modulo their number; overrides --pool-size.
    #[arg(long, value_delimiter = ',', value_name = "K1,K2,...")]
    pool_sizes: Vec<u8>,
    /// Draw Ct values from viral load and pool dilution (pools past the cut-off read
    /// negative) and write ct_truth.csv.
    #[arg(long)]
    ct_model: bool,
    /// Share of rows whose optional fields are left blank: capacity and site of a
    /// collections row; lab, plate, well and (where the result word is written) the Cts
    /// of a results row. The people, tubes and results stay those of the same seed.
    #[arg(long, default_value_t = 0.0, value_name = "F")]
    blank_optional: f64,
    /// How person ids look; both are valid resident identity numbers.
    #[arg(long, value_enum, default_value_t = Ids::Numbered)]
    ids: Ids,
    /// Also write population.csv, the register (person,district,community): every
    /// person plus 0.5 % registered people who got no tube.
    #[arg(long, conflicts_with = "incidents")]
    population: bool,
    /// Also stage a failed plate, a late lab, a discordant pool, an unregistered person
    /// and untested registered people, and write population.csv and incidents.json.
    #[arg(long)]
    incidents: bool,
    /// Write this many rounds of the same city (2 to 10), one folder each, with a
    /// register and rounds.json (see below).
    #[arg(long, value_name = "N", conflicts_with_all = ["incidents", "population"])]
    rounds: Option<u32>,
    /// Hours from one round's start to the next, with --rounds.
    #[arg(long, default_value_t = 24.0, value_name = "H", requires = "rounds")]
    round_gap_hours: f64,
    /// Output folder.
    #[arg(long)]
    out: PathBuf,
}

/// `--ids`: the generator's [`PersonIds`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Ids {
    /// `31`, the person's number in 15 digits, the check character: ids in row order.
    Numbered,
    /// District code, birth date 1940–2019, sequence, check character: ids in no
    /// order, sharing long prefixes, as a city's are.
    Resident,
}

impl Ids {
    /// The option's value, as reports name the shape.
    pub fn as_str(self) -> &'static str {
        match self {
            Ids::Numbered => "numbered",
            Ids::Resident => "resident",
        }
    }
}

impl From<Ids> for PersonIds {
    fn from(ids: Ids) -> PersonIds {
        match ids {
            Ids::Numbered => PersonIds::Numbered,
            Ids::Resident => PersonIds::Resident,
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let cfg = GenConfig {
        persons: args.persons,
        prevalence: args.prevalence,
        seed: args.seed,
        pool_share: args.pool_share,
        pool_size: args.pool_size,
        pool_sizes: args.pool_sizes.clone(),
        ct_model: args.ct_model,
        blank_optional: args.blank_optional,
        population: args.population,
        ids: args.ids.into(),
    };
    if let Some(rounds) = args.rounds {
        let pb = Bar::new(args.persons, "pos");
        let staged = synth::rounds::generate_rounds(
            &cfg,
            rounds,
            args.round_gap_hours,
            &args.out,
            Some(&pb),
        );
        pb.finish_and_clear();
        let staged = staged?;
        println!(
            "generated {rounds} rounds of {} persons in {}, {} h apart: {}; {} person(s) miss R2 (rounds.json)",
            args.persons,
            args.out.display(),
            args.round_gap_hours,
            staged
                .rounds
                .iter()
                .map(|r| format!("{} from {}", r.name, r.first_swab))
                .collect::<Vec<_>>()
                .join(", "),
            staged.lapsed.len()
        );
        return Ok(());
    }
    if args.incidents {
        // Refused before anything is generated: a city too large for the second pass
        // would otherwise be written only to be left without its incidents.
        incidents::check(&cfg)?;
    }
    let pb = Bar::new(args.persons, "pos");
    let generated = if args.incidents {
        incidents::generate(&cfg, &args.out, Some(&pb)).map(|(s, i)| (s, Some(i)))
    } else {
        synth::generate(&cfg, &args.out, Some(&pb)).map(|s| (s, None))
    };
    pb.finish_and_clear();
    let (summary, staged) = generated?;
    println!(
        "generated {} persons ({} infected) in {}: {} pool tubes, {} single tubes, {} positive pools, {} retests",
        summary.persons,
        summary.infected,
        args.out.display(),
        summary.pool_tubes,
        summary.single_tubes,
        summary.positive_pools,
        summary.retest_tubes
    );
    if summary.missed_pools + summary.missed_singles > 0 {
        println!(
            "ct model (ct_truth.csv): {} pool(s) and {} single tube(s) holding an infected person read negative",
            summary.missed_pools, summary.missed_singles
        );
    }
    if summary.registered > 0 {
        println!(
            "population.csv: {} registered persons ({} without a tube)",
            summary.registered,
            summary.registered.saturating_sub(summary.persons)
        );
    }
    if let Some(i) = staged {
        println!(
            "incidents (incidents.json): plate {} of lab {} failed ({} tubes to rerun); lab {} reports past {} h; pool {} is discordant ({} members); person {} is unregistered; {} registered persons untested",
            i.failed_plate.plate,
            i.failed_plate.lab,
            i.failed_plate.tubes.len(),
            i.late_lab.lab,
            i.late_lab.deadline_hours,
            i.discordant_pool.tube,
            i.discordant_pool.members.len(),
            i.unregistered_person.person,
            i.population.untested
        );
        let a = &i.lab_audit;
        println!(
            "for pooltrack audit: lab {} reports {} false-positive pools; lab {} reports {} tubes within {} min; {}",
            a.positives_lab.lab,
            a.positives_lab.false_positive_pools.len(),
            a.fast_lab.lab,
            a.fast_lab.tubes,
            a.fast_lab.minutes,
            a.late_recall.as_ref().map_or_else(
                || "no pool to recall late".to_owned(),
                |l| format!(
                    "pool {} recalled {} min after its report",
                    l.tube, l.minutes
                )
            )
        );
    }
    Ok(())
}
