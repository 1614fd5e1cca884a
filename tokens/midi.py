"""Symbolic music as MIDI performance events: the vocabulary of Oore et al. 2018 (Performance RNN,
Music Transformer), 388 ids:
    0-127    note-on, by pitch
    128-255  note-off, by pitch
    256-355  time shift of 10, 20, ..., 1000 ms (longer silences take several)
    356-387  velocity: 32 bins of 4 MIDI velocities; sets the loudness of the note-ons that follow
All tracks and channels are merged into one piano; drum channel 10 is left out. The sustain pedal
(CC64 >= 64) holds a released note until the pedal is lifted or the same key is struck again.
Times are rounded to 10 ms, every note lasts at least 10 ms, silence before the first note is
dropped. At one instant, note-offs come before note-ons, each in pitch order, so the tokens of a
performance are unique and decoding them to MIDI and encoding again gives the same tokens.
Reading and writing MIDI needs mido (pip install mido)."""
import io
from collections import Counter

import numpy as np

from errors import UserError
from outputs import write_atomically
from tokens.base import Tokenizer

NOTE_ON, NOTE_OFF, TIME_SHIFT, VELOCITY, VOCAB_SIZE = 0, 128, 256, 356, 388
STEPS_PER_SECOND, MAX_SHIFT = 100, 100  # 10 ms steps; one time-shift token moves at most 1 s
DRUM_CHANNEL = 9  # channel 10, counting from 1
SUSTAIN = 64


def import_mido():
    try:
        import mido
    except ImportError:
        raise UserError("reading and writing MIDI needs mido: pip install mido")
    return mido


def velocity_bin(velocity):
    return (velocity - 1) // 4  # 1..127 -> 0..31


def read_notes(midi):
    """A mido.MidiFile -> notes [pitch, velocity, start s, end s], sustain pedal applied."""
    notes, held, sustained, pedal, t = [], {}, {}, [False] * 16, 0.0
    for msg in midi:  # all tracks merged in time order; msg.time is seconds, tempo map applied
        t += msg.time
        if msg.type not in ("note_on", "note_off", "control_change") or msg.channel == DRUM_CHANNEL:
            continue
        if msg.type == "control_change":
            if msg.control == SUSTAIN:
                if pedal[msg.channel] and msg.value < 64:  # pedal lifted: sustained notes end now
                    for key in [k for k in sustained if k[0] == msg.channel]:
                        for i in sustained.pop(key):
                            notes[i][3] = t
                pedal[msg.channel] = msg.value >= 64
            continue
        key = (msg.channel, msg.note)
        if msg.type == "note_on" and msg.velocity > 0:
            for i in sustained.pop(key, []):  # the same key struck again ends the sustained note
                notes[i][3] = t
            held.setdefault(key, []).append(len(notes))
            notes.append([msg.note, msg.velocity, t, None])
        elif held.get(key):  # note-off (or note-on with velocity 0) releases the oldest held note
            i = held[key].pop(0)
            if pedal[msg.channel]:
                sustained.setdefault(key, []).append(i)
            else:
                notes[i][3] = t
    for note in notes:  # never released, or still under the pedal: the note lasts to the end
        if note[3] is None:
            note[3] = t
    return notes


def notes_to_tokens(notes):
    """Notes -> uint16 event ids (see module docstring)."""
    events = []
    for pitch, velocity, start, end in notes:
        on = round(start * STEPS_PER_SECOND)
        events.append((on, 1, pitch, velocity_bin(velocity)))
        events.append((max(round(end * STEPS_PER_SECOND), on + 1), 0, pitch, 0))
    events.sort()  # by time; at one time offs (0) before ons (1); then pitch, velocity
    ids, now, current_bin = [], events[0][0] if events else 0, None
    for step, is_on, pitch, vbin in events:
        while step > now:
            shift = min(step - now, MAX_SHIFT)
            ids.append(TIME_SHIFT + shift - 1)
            now += shift
        if is_on and vbin != current_bin:
            ids.append(VELOCITY + vbin)
            current_bin = vbin
        ids.append((NOTE_ON if is_on else NOTE_OFF) + pitch)
    return np.array(ids, dtype=np.uint16)


def encode_file(path):
    """A MIDI file (path or bytes) -> uint16 event ids. A file that ends too soon raises a ValueError that says so."""
    mido = import_mido()
    if isinstance(path, bytes):
        data = path
    else:
        with open(path, "rb") as f:
            data = f.read()
    if not data:
        raise ValueError("empty file")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except EOFError:  # mido's only word for it
        raise ValueError(f"truncated: the file ends inside its header or a track ({len(data)} bytes)")
    return notes_to_tokens(read_notes(midi))


def write_midi(ids, path):
    """Event ids -> a one-track MIDI file, written atomically. Notes still on at the end are closed."""
    mido = import_mido()
    # 500 ticks per beat at 120 bpm: one tick is 1 ms, so every 10 ms step is a whole number of ticks
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    step = last = 0
    velocity, sounding = 64, Counter()  # velocity until the first velocity token: the middle bin

    def add(kind, pitch, vel):
        nonlocal last
        track.append(mido.Message(kind, note=pitch, velocity=vel, time=10 * (step - last)))
        last = step

    for i in map(int, ids):
        if i < NOTE_OFF:
            add("note_on", i - NOTE_ON, velocity)
            sounding[i - NOTE_ON] += 1
        elif i < TIME_SHIFT:
            if sounding[i - NOTE_OFF]:  # a note-off with no note on (generated tokens) is dropped
                add("note_off", i - NOTE_OFF, 0)
                sounding[i - NOTE_OFF] -= 1
        elif i < VELOCITY:
            step += i - TIME_SHIFT + 1
        elif i < VOCAB_SIZE:
            velocity = 4 * (i - VELOCITY) + 2  # the middle of the bin
        else:
            raise ValueError(f"token id {i} is outside the MIDI event vocabulary (0..{VOCAB_SIZE - 1})")
    for pitch in sorted(sounding):
        for _ in range(sounding[pitch]):
            add("note_off", pitch, 0)
    track.append(mido.MetaMessage("end_of_track", time=10 * (step - last)))
    midi = mido.MidiFile(ticks_per_beat=500)
    midi.tracks.append(track)
    return write_atomically(path, midi.save)


def seconds(ids):
    """Length of event ids in seconds (the sum of their time shifts)."""
    ids = np.asarray(ids, dtype=np.int64)
    shifts = ids[(ids >= TIME_SHIFT) & (ids < VELOCITY)]
    return float((shifts - TIME_SHIFT + 1).sum()) / STEPS_PER_SECOND


class MidiEvents(Tokenizer):
    name = "midi_events"
    suffix = ".mid"
    suffixes = (".mid", ".midi")
    text = False

    @classmethod
    def facts(cls):
        return {"vocab_size": VOCAB_SIZE, "dtype": "uint16", "modality": "music", "tokenizer": cls.name,
                "steps_per_second": STEPS_PER_SECOND, "start_token": VELOCITY + 16}  # pieces begin with a velocity

    def read(self, path):
        import_mido()
        try:
            return encode_file(path)
        except Exception as e:  # mido raises many types on broken files
            raise UserError(f"{path} is not a readable MIDI file ({type(e).__name__}: {e}".rstrip(": ") +
                            "); give a .mid prompt")

    def ready(self):
        import_mido()  # a one-line error now if mido is missing, not after the sampling

    def write(self, ids, path):
        return write_midi(ids, path)

    def start(self):
        return [self.meta.get("start_token", VELOCITY + 16)]
