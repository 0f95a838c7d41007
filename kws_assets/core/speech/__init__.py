"""Speech: TTS engines, lexicons, languages, text normalisation and aligners."""
