# shellcheck shell=sh
# A throwaway grid PKI with openssl, for demo.sh, tests/bench/run.sh and the admin-guide runner:
# sourced, not run. Every function works in the directory given as its first argument.
#
#   pki_ca DIR SUBJECT                  DIR/ca.pem + ca.key: a self-signed CA (2 days)
#   pki_issue DIR NAME SUBJECT          DIR/NAME.pem + NAME.key (0600): an end-entity certificate
#                                       signed by DIR's CA (1 day)
#   pki_trust DIR CERTDIR DN_PREFIX     the CA into an IGTF-style trust dir: <hash>.0 and a
#                                       .signing_policy allowing subjects DN_PREFIX/*
#   pki_lsc VOMSDIR VO HOST HOST_DN CA_DN
#                                       VOMSDIR/VO/HOST.lsc (the VOMS server's DN and its CA's)

pki_ca() {
    openssl rand -out "$1/.rnd" 256
    RANDFILE="$1/.rnd" openssl req -x509 -newkey rsa:2048 -sha256 -nodes -days 2 -subj "$2" \
        -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$1/ca.key" -out "$1/ca.pem" 2>/dev/null
}

pki_issue() {
    RANDFILE="$1/.rnd" openssl req -newkey rsa:2048 -nodes -subj "$3" \
        -keyout "$1/$2.key" -out "$1/$2.csr" 2>/dev/null || return 1
    printf 'basicConstraints=critical,CA:false\nkeyUsage=critical,digitalSignature,keyEncipherment\n' \
        > "$1/$2.ext"
    RANDFILE="$1/.rnd" openssl x509 -req -sha256 -days 1 -in "$1/$2.csr" -CA "$1/ca.pem" \
        -CAkey "$1/ca.key" -CAcreateserial -extfile "$1/$2.ext" -out "$1/$2.pem" 2>/dev/null \
        || return 1
    chmod 600 "$1/$2.key"
}

pki_trust() {
    _h=$(openssl x509 -in "$1/ca.pem" -noout -subject_hash) || return 1
    _dn=$(openssl x509 -in "$1/ca.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
    cp "$1/ca.pem" "$2/$_h.0"
    printf "access_id_CA   X509    '%s'\npos_rights     globus  CA:sign\ncond_subjects  globus  '\"%s/*\"'\n" \
        "$_dn" "$3" > "$2/$_h.signing_policy"
}

pki_lsc() {
    mkdir -p "$1/$2"
    printf '%s\n%s\n' "$4" "$5" > "$1/$2/$3.lsc"
}
