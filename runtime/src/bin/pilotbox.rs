fn main() {
    eprintln!("pilotbox: not yet wired");
    std::process::exit(123);
}
