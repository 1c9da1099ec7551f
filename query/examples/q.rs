fn main() {
    let sql = std::env::args().nth(1).unwrap();
    let cat = pgipc_query::Catalog::new();
    let mut s = pgipc_query::GucSession::new(pgipc_guc::Settings::new());
    println!("{:?}", pgipc_query::query_text(&sql, &cat, &mut s));
}
