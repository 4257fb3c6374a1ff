#compdef silo
# zsh completion for silo: install it as _silo in a directory of $fpath,
# or source it after compinit.
_silo() {
	local -a out cands
	out=("${(@f)$("${words[1]}" __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	local directive=${out[-1]}
	cands=("${(@)out[1,-2]}")
	if [[ $directive == :files && ${#cands} -eq 0 ]]; then
		_files
	elif [[ $directive == :nospace ]]; then
		compadd -Q -S '' -a cands
	else
		compadd -Q -a cands
	fi
}
if [[ $funcstack[1] == _silo ]]; then
	_silo "$@"
else
	compdef _silo silo
fi
