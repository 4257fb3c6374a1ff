# bash completion for silo: source it, or install it as
# /usr/share/bash-completion/completions/silo.
_silo() {
	local line=${COMP_LINE:0:COMP_POINT} cur=${COMP_WORDS[COMP_CWORD]}
	local -a words out
	# The words as typed: bash splits "host:web" at the colon in
	# COMP_WORDS, and the candidates name whole references.
	read -ra words <<<"$line"
	[[ -z $line || $line == *[[:space:]] ]] && words+=("")
	local IFS=$'\n'
	out=($("${words[0]}" __complete "${words[@]:1}" 2>/dev/null))
	local directive=${out[${#out[@]}-1]}
	unset 'out[${#out[@]}-1]'
	if [[ $directive == :files && ${#out[@]} -eq 0 ]]; then
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return
	fi
	[[ $directive == :nospace ]] && compopt -o nospace 2>/dev/null
	# Bash replaces only what follows the last word break (: or =): drop
	# what comes before it from the candidates.
	local full=${words[${#words[@]}-1]} prefix=""
	[[ $full == *"$cur" ]] && prefix=${full%"$cur"}
	COMPREPLY=("${out[@]#"$prefix"}")
}
complete -F _silo silo
